/** The widget's one stylesheet, adopted by its shadow root as a constructable stylesheet: no
 * `<style>` element and no `style=""` attribute ever reaches the host document, so a strict
 * `style-src` CSP host works. `:host` resets with `all: initial !important` (an important
 * declaration from inside the shadow tree beats the page's) so hostile host rules such as
 * `* { all: unset }` cannot leak in; theme colours arrive as custom properties (--p primary,
 * --t text, --b background, --f font, --r radius). */
export const CSS =
  ":host{all:initial!important;position:fixed!important;z-index:2147483647!important;--p:#4f46e5;--t:#1f2937;--b:#fff;--f:system-ui,sans-serif;--r:10px}" +
  "*{box-sizing:border-box}" +
  ".l{font:14px/1.45 var(--f);color:var(--t)}" +
  ".c,.g{position:fixed;background:var(--b);border-radius:var(--r);box-shadow:0 8px 28px #0004,0 0 0 1px #0001}" +
  ".c{top:0;left:0;width:max-content;max-width:min(340px,calc(100vw - 16px));padding:16px 16px 12px;animation:i .2s}" +
  ".c.m,.c.k{top:50%;left:50%;transform:translate(-50%,-50%);width:min(440px,calc(100vw - 32px));max-width:none}" +
  ".c.k{top:auto;bottom:80px;transform:translateX(-50%)}" +
  ".o,.s,.c{z-index:1}" +
  ".c:focus{outline:0}" +
  "h2{font-size:16px;margin:0 0 6px;margin-inline-end:28px}" +
  "p{margin:0 0 8px}a{color:var(--p)}img{max-width:100%}" +
  ".f{display:flex;align-items:center;gap:8px;margin-top:10px}" +
  ".n{flex:1;font-size:12px;opacity:.7}" +
  "button{font:inherit;cursor:pointer;border-radius:6px;border:1px solid #0003;background:0 0;color:inherit;padding:6px 12px}" +
  ".p{background:var(--p);border-color:var(--p);color:#fff}" +
  ":focus-visible{outline:3px solid var(--p);outline-offset:2px}" +
  ".x{position:absolute;top:8px;inset-inline-end:8px;border:0;padding:2px 8px;font-size:18px}" +
  ".o,.s{position:fixed;inset:0;background:#1118}" +
  ".z{visibility:hidden}" +
  // The arrow: a square turned 45° under the card's content, half of it showing.
  ".a{position:absolute;width:12px;height:12px;background:inherit;transform:rotate(45deg);z-index:-1}" +
  ".m>.a,.k>.a{display:none}" +
  ".h{position:fixed;top:0;left:0;width:22px;height:22px;padding:0;border-radius:50%;background:var(--p);border:3px solid #fff;animation:u 1.6s infinite}" +
  ".g{width:300px;max-width:calc(100vw - 24px);bottom:16px;inset-inline-end:16px}" +
  ".bottom-left{inset-inline:16px auto}" +
  ".top{bottom:auto;top:12px;left:50%;transform:translateX(-50%)}" +
  ".g>button{display:flex;width:100%;border:0;padding:12px 14px;font-weight:600;gap:8px}" +
  ".g span{flex:1;text-align:start}" +
  "ul{list-style:none;margin:0;padding:0 14px 12px}" +
  "li{display:flex;align-items:center;gap:8px;padding:6px 0;border-top:1px solid #0001}" +
  "i{width:18px;height:18px;border-radius:50%;border:2px solid #0004;font:11px/14px var(--f);text-align:center}" +
  ".d i{background:#16a34a;border-color:#16a34a;color:#fff}" +
  ".d span{text-decoration:line-through;opacity:.7}" +
  "li button{padding:3px 8px;font-size:12px}" +
  ".r{height:6px;margin:0 14px 10px;border-radius:3px;background:#0001;overflow:hidden}" +
  ".r div{height:100%;background:var(--p);transition:width .4s}" +
  ".pc{margin:-4px 14px 10px;font-size:12px}" +
  ".t{position:fixed;bottom:24px;left:50%;transform:translateX(-50%);background:#111;color:#fff;padding:10px 16px;border-radius:99px;animation:i .3s}" +
  ".v{position:fixed;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}" +
  "@keyframes i{from{opacity:0}}" +
  "@keyframes u{50%{box-shadow:0 0 0 8px #4f46e555}}" +
  "@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}";
