// Bundles src/ into ../static (app.js, app.css). The pages' htm templates are compiled to h() calls
// first (babel-plugin-htm, htm's own compiler), so the bundle ships neither their text nor htm's parser;
// the sources still run as they are, htm parsing the same templates in the browser.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { transformAsync } from "@babel/core";
import htmPlugin from "babel-plugin-htm";
import * as esbuild from "esbuild";

const SOURCES = fileURLToPath(new URL("src/", import.meta.url));

const compileTemplates = {
  name: "htm",
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, async ({ path }) => {
      if (!path.startsWith(SOURCES)) return undefined; // the packages are built already
      const { code } = await transformAsync(await readFile(path, "utf8"), {
        filename: path,
        babelrc: false,
        configFile: false,
        // preact's createElement is its h, imported under a name that ui.js's own `h` does not clash with.
        plugins: [[htmPlugin, { pragma: "createElement", import: "preact", useNativeSpread: true }]],
      });
      return { contents: code, loader: "js" };
    });
  },
};

await esbuild.build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  legalComments: "none",
  outfile: "../static/app.js",
  plugins: [compileTemplates],
});
await esbuild.build({ entryPoints: ["src/app.css"], minify: true, outfile: "../static/app.css" });
