// Renders markdown (stdin) with the Dagster UI's own markdown component, MarkdownWithPlugins (react-markdown with
// the UI's rehype-sanitize schema), taken from the installed dagster-webserver bundle, and prints the `src` of
// every <img> it would put on the page as JSON: {"module": <webpack id>, "imgs": [src or null, ...]}.
// Usage: node ui_markdown.js <dagster_webserver/webapp/build/_next/static/chunks>  (test_charts.py runs it)
// No browser: the component is a pure function from markdown to React elements, walked here.
const fs = require('fs'), path = require('path'), vm = require('vm');

const dir = process.argv[2], markdown = fs.readFileSync(0, 'utf8');
const factories = {};
for (const f of fs.readdirSync(dir, {recursive: true})) {
  if (!f.endsWith('.js') || path.basename(f).startsWith('webpack-')) continue;  // the runtime: this file plays it
  const code = fs.readFileSync(path.join(dir, f), 'utf8');
  if (!code.includes('webpackChunk_N_E')) continue;
  // each file its own `self` (a worker's runtime replacing `push` affects only itself); the browser build of
  // decode-named-character-reference needs a document at load (entities are not decoded here)
  const self = {webpackChunk_N_E: {push: ([, modules]) => Object.assign(factories, modules)}};
  const document = {createElement: () => ({innerHTML: '', get textContent() { return this.innerHTML; }})};
  try { vm.runInNewContext(code, {self, window: self, document}); } catch (e) { /* workers, page entries */ }
}

const cache = {};
function req(id) {
  if (cache[id]) return cache[id].exports;
  if (!factories[id]) throw new Error('module not in the bundle: ' + id);
  const module = cache[id] = {exports: {}, id};
  factories[id].call(module.exports, module, module.exports, req);
  return module.exports;
}
req.r = e => { Object.defineProperty(e, '__esModule', {value: true}); };
req.d = (e, getters) => {
  for (const k in getters) if (!Object.prototype.hasOwnProperty.call(e, k)) Object.defineProperty(e, k, {enumerable: true, get: getters[k]});
};
req.n = m => { const g = m && m.__esModule ? () => m.default : () => m; req.d(g, {a: g}); return g; };
req.o = (o, p) => Object.prototype.hasOwnProperty.call(o, p);
req.g = globalThis;

const id = Object.keys(factories).find(k => factories[k].toString().includes('MarkdownWithPlugins:()=>'));
if (!id) throw new Error('MarkdownWithPlugins not found in ' + dir);
const imgs = [];
function walk(node) {
  if (node == null || typeof node !== 'object') return;
  if (Array.isArray(node)) return node.forEach(walk);
  if (typeof node.type === 'function') return walk(node.type(node.props));
  if (node.type === 'img') imgs.push(node.props.src ?? null);
  if (node.props) walk(node.props.children);
}
walk(req(id).default({children: markdown}));
process.stdout.write(JSON.stringify({module: id, imgs}));
