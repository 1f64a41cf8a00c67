// The dashboard's only assets, served by the handler itself (no CDN: it works offline).

export const CSS = `
:root{--bg:#f6f7f9;--fg:#1d2330;--muted:#667085;--line:#d9dde5;--card:#fff;--accent:#2f5bd3;--ok:#2e9d5b;--bad:#d14343;--warn:#c98a12}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--fg:#e6e8ec;--muted:#98a2b3;--line:#2c323c;--card:#1b1f26;--accent:#7aa2ff}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;gap:18px;align-items:center;padding:10px 20px;border-bottom:1px solid var(--line);background:var(--card)}
header b{font-size:15px}header nav a{margin-right:14px;color:var(--muted);text-decoration:none}header nav a.on{color:var(--fg);font-weight:600}
header .scope{margin-left:auto;color:var(--muted)}#live{font-size:12px;color:var(--muted)}#live.on{color:var(--ok)}
main{padding:18px 20px;max-width:1400px}h1{font-size:18px;margin:0 0 12px}h2{font-size:15px;margin:22px 0 8px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:130px}
.card .n{font-size:22px;font-weight:600}.card .l{color:var(--muted);font-size:12px}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:var(--accent)}pre{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px;overflow:auto;max-height:360px;margin:0}
form.inline{display:inline}button{font:inherit;padding:2px 9px;border:1px solid var(--line);border-radius:5px;background:var(--card);color:var(--fg);cursor:pointer}
button.danger{color:var(--bad)}input,select{font:inherit;padding:3px 6px;border:1px solid var(--line);border-radius:5px;background:var(--card);color:var(--fg)}
.filters{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin-bottom:12px}.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
.flash{padding:8px 12px;border-radius:6px;margin-bottom:12px;border:1px solid var(--line);background:var(--card)}.flash.err{border-color:var(--bad);color:var(--bad)}
.state{font-size:12px;padding:1px 6px;border-radius:9px;border:1px solid var(--line)}.state.failed{color:var(--bad)}.state.completed{color:var(--ok)}.state.running{color:var(--accent)}.state.held{color:var(--warn)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0}dt{color:var(--muted)}dd{margin:0}
svg.flow{display:block;max-width:100%;height:auto;margin-bottom:10px}svg.flow rect{fill:var(--card);stroke:var(--line);stroke-width:1.5}svg.flow text{fill:var(--fg);font-size:12px}svg.flow text.sub{fill:var(--muted);font-size:11px}
svg.flow .edges path{fill:none;stroke:var(--muted);stroke-width:1.2}svg.flow marker path{fill:var(--muted)}svg.flow a.completed rect{stroke:var(--ok)}svg.flow a.failed rect,svg.flow a.cancelled rect{stroke:var(--bad)}
svg.flow a.running rect{stroke:var(--accent)}svg.flow a.current rect{stroke:var(--accent);stroke-width:3;fill:var(--bg)}tr.current{background:var(--bg);font-weight:600}
svg.chart{background:var(--card);border:1px solid var(--line);border-radius:8px}.muted{color:var(--muted)}.pager{margin-top:10px}
`

export const JS = `
(function(){
  var base=document.body.getAttribute('data-base')||'';
  document.addEventListener('submit',function(e){var m=e.target.getAttribute('data-confirm');if(m&&!window.confirm(m))e.preventDefault()});
  if(!document.querySelector('[data-live]')||!window.EventSource)return;
  var dot=document.getElementById('live');
  var es=new EventSource(base+'/events');
  es.onopen=function(){if(dot){dot.textContent='live';dot.className='on'}};
  es.onerror=function(){if(dot){dot.textContent='reconnecting';dot.className=''}};
  es.onmessage=function(ev){
    var d;try{d=JSON.parse(ev.data)}catch(_){return}
    document.querySelectorAll('[data-live]').forEach(function(el){
      var k=el.getAttribute('data-live');if(Object.prototype.hasOwnProperty.call(d,k))el.textContent=d[k]===null?'-':String(d[k]);
    });
  };
})();
`
