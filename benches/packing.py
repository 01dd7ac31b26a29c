# What packing the migrations' metadata buys a rebuild (benches/RESULTS.md,
# "Packing"). Generates two binary crates, in the current directory, that
# embed the same N migrations' metadata against this repository's runtime:
# `packed` (one string, as `#[durable_schema]` emits it) and `calls` (a
# `Migration::__new(...)` const-fn call per migration, as it emitted before
# packing). Texts are short literals, the same in both, so the difference is
# the metadata's. Run from a scratch directory under target/, e.g.
#   mkdir -p target/tmp/packing && cd target/tmp/packing
#   python3 ../../../benches/packing.py 1000
# then time `touch src/main.rs && cargo build --release` in each crate.
import hashlib, os, random, sys
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
rt = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtime")
random.seed(2026)
def h(s): return hashlib.sha256(s.encode()).hexdigest()
migs = []
prev = ""
for v in range(1, N + 1):
    desc = f"add_table_{v}_" + random.choice(["users", "posts", "index", "cols"])
    nst = random.randint(3, 20)
    stmts = [f"CREATE TABLE t{v}_{i} (x)" for i in range(nst)]
    text = "".join(f"{st};\\n" for st in stmts)
    spans, at = [], 0
    for i, st in enumerate(stmts):
        spans.append(f"{at},{at + len(st)},{i + 1},1")
        at += len(st) + 2
    spans = " ".join(spans)
    ck = h(text); ch = h(prev + ck); prev = ch
    fk = random.sample(["posts", "users", "sessions"], random.choice([0,0,0,0,1,2]))
    migs.append((v, f"{v:04}_{desc}.sql", desc, text, ck, ch, spans, fk))
def field(s): return f"{len(s.encode())}:{s}"
def pack():
    out = ["ds1;"]
    for (v, n, d, t, ck, ch, sp, fk) in migs:
        out += [field(str(v)), field(n), field(d), field(ck), field(ch), field(sp), field("")]
        out += [field(str(len(fk)))] + [field(x) for x in fk]
        out += [field("0"), field("0")]
    return "".join(out)
texts = ",\n".join(f'"{m[3]}"' for m in migs)
head = f'''pub const SCHEMA: durable_schema_runtime::Schema = {{
    const TEXTS: &[&str] = &[{texts}];
'''
packed = head + f'''    const META: &str = r#"{pack()}"#;
    const _: () = durable_schema_runtime::__private::check_tag(META);
    fn decoded() -> &'static [durable_schema_runtime::Migration] {{
        static CELL: durable_schema_runtime::__private::DecodedCell = durable_schema_runtime::__private::DecodedCell::new();
        durable_schema_runtime::__private::decoded(&CELL, TEXTS, META)
    }}
    durable_schema_runtime::Schema::__packed("migrations", false, {N}, "{migs[-1][5]}", decoded)
        .__with_head_query("SELECT 1")
}};
'''
def call(m):
    (v, n, d, t, ck, ch, sp, fk) = m
    fks = ", ".join(f'"{x}"' for x in fk)
    return (f'durable_schema_runtime::Migration::__new({v}, "{n}", "{d}", TEXTS[{v-1}], "{ck}", "{ch}", "{sp}")'
            f'.__with_foreign_key_checks(&[{fks}]).__with_replacements(&[], &[])')
calls = head + '    const MIGRATIONS: &[durable_schema_runtime::Migration] = &[\n' + ",\n".join(call(m) for m in migs) + '''];
    durable_schema_runtime::Schema::__new("migrations", false, MIGRATIONS).__with_head_query("SELECT 1")
};
'''
for name, body in [("packed", packed), ("calls", calls)]:
    os.makedirs(f"{name}/src", exist_ok=True)
    open(f"{name}/Cargo.toml", "w").write(f'''[package]
name = "m-{name}"
version = "0.0.0"
edition = "2021"
[dependencies]
durable-schema-runtime = {{ path = "{rt}" }}
[workspace]
''')
    open(f"{name}/src/schema.rs", "w").write(body)
    open(f"{name}/src/main.rs", "w").write('mod schema;\nfn main() { println!("{}", schema::SCHEMA.migrations().len()); }\n')
    print(name, len(body.encode()), "bytes of generated schema")
