/**
 * Imports a pgqueue workspace package, or returns undefined while it has no entry point yet (the
 * colleagues' packages land one by one; a case that needs a missing one reports "n/a").
 */
export async function importWorkspace<T = Record<string, unknown>>(name: string): Promise<T | undefined> {
  try {
    return (await import(name)) as T
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') {
      process.stderr.write(`${name} not importable: ${(err as Error).message.split('\n')[0]}\n`)
      return undefined
    }
    throw err
  }
}
