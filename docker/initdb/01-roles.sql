-- Runs once, when the data volume is created (docker-entrypoint-initdb.d), as the superuser, in database app.
-- The README's three example logins (section Roles). pgqueue's initialize() grants privileges only to the two NOLOGIN group roles;
-- creating them here means the admin needs no CREATEROLE.

create role queue_worker nologin;
create role queue_user nologin;

create role pgqueue_admin login password 'pgqueue_admin';
create role pgqueue_worker_login login password 'pgqueue_worker_login' in role queue_worker;
create role pgqueue_app login password 'pgqueue_app' in role queue_user;

-- The admin owns the database, so initialize() can create the pgqueue schema and own its tables.
alter database app owner to pgqueue_admin;
