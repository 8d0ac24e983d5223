// Bundles the portal into dist/: one script, one stylesheet, the page and the offline base layer's data.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

const dist = new URL("./dist/", import.meta.url).pathname;
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2020"],
  outfile: `${dist}main.js`,
  logLevel: "warning",
});
copyFileSync("src/index.html", `${dist}index.html`);
// Natural Earth admin-0 boundaries at 1:50m (public domain), as TopoJSON: the base layer without internet
copyFileSync("node_modules/world-atlas/countries-50m.json", `${dist}countries.json`);
