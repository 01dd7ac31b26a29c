// node gen-migrations.mjs DIR [--check]
//
// Writes DIR/migrations.js from DIR/meta/_journal.json exactly as drizzle-kit
// does for `driver: "durable-sqlite"` (it imports each .sql file as text, which
// wrangler.toml's `Text` rule for **/*.sql provides). drizzle-kit itself is not
// needed: the journal and the SQL files are committed.
// --check: exit 1 when DIR/migrations.js differs from what would be written.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";

const [dir, flag] = process.argv.slice(2);
if (!dir) {
  console.error("usage: node gen-migrations.mjs DIR [--check]");
  process.exit(2);
}
const journal = JSON.parse(readFileSync(join(dir, "meta/_journal.json"), "utf8"));
const name = (e) => `m${e.idx.toString().padStart(4, "0")}`;
let content = "import journal from './meta/_journal.json';\n";
for (const e of journal.entries) {
  if (!existsSync(join(dir, `${e.tag}.sql`))) {
    console.error(`${dir}: journal entry ${e.idx} has no file ${e.tag}.sql`);
    process.exit(1);
  }
  content += `import ${name(e)} from './${e.tag}.sql';\n`;
}
content += `
  export default {
    journal,
    migrations: {
      `;
content += journal.entries.map(name).join(",\n");
content += `
    }
  }
  `;
const out = join(dir, "migrations.js");
if (flag === "--check") {
  const current = existsSync(out) ? readFileSync(out, "utf8") : "";
  if (current !== content) {
    console.error(`${out} is out of date: run node gen-migrations.mjs ${dir}`);
    process.exit(1);
  }
} else {
  writeFileSync(out, content);
}
