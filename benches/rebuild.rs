//! What `#[durable_schema(dir = "migrations")]` adds to a rebuild of the
//! crate that uses it: wall time of touching `src/main.rs` and running
//! `cargo build --release --offline`, for a small binary crate with the
//! attribute on a generated chain of N migrations (10, 200, 1000), minus the
//! same for a control crate that is identical but for the attribute.
//!
//! `compiler/benches/check.rs` times `check_dir` alone; this times what a
//! user waits for, with everything around the check: loading the proc macro,
//! reading the files, the check or the cache lookup, embedding the texts
//! (`include_str!`) and compiling what the attribute generates.
//!
//! Cases, each with the verdict cache (`DURABLE_SCHEMA_CACHE`) in a scratch
//! directory of its own:
//!
//! - `cold`: `DURABLE_SCHEMA_CACHE=off`, the full replay on every rebuild
//!   (what every rebuild paid before the cache);
//! - `hit`: the cache holds the directory's verdict (unchanged migrations);
//! - `one new`: the cache holds what the check of the first N - 1 left (their
//!   verdict and replay image), and the N-th file has been added; every
//!   iteration starts from that cache again.
//!
//! Touching `src/main.rs` is what makes each build re-expand the attribute:
//! the macro reads `DURABLE_SCHEMA_CACHE` when it runs, but Cargo does not
//! rebuild a crate because an environment variable changed, and adding a
//! file is noticed only by a build script (which the generated crates do not
//! have, so that the control and the measured crate differ only by the
//! attribute). Every timed build is checked to have compiled the crate.
//!
//! The crates live in `<target>/tmp/rebuild-bench/`, outside the repository's
//! workspace (`[workspace]` in their manifests), with the repository's
//! `Cargo.lock` and one shared `CARGO_TARGET_DIR` (`.../rebuild-bench/target`),
//! so the facade and its dependencies compile once and are kept between runs.
//! Cargo's defaults apply: the proc macro and its dependencies (the compiler,
//! SQLite, sqlparser) are built like every build dependency, without
//! optimizations (`profile.release.build-override`). Environment variables
//! reach the inner builds, so
//! `CARGO_PROFILE_RELEASE_BUILD_OVERRIDE_OPT_LEVEL=3` measures an optimized
//! macro.
//!
//! A crate that does not compile gets a row saying so, the other sizes
//! still run, and the bench fails at the end.
//!
//! The measured crate names only `CURRENT_SCHEMA_VERSION`, so the embedded
//! SQL is checked by rustc but not compiled into the binary. A real Durable
//! Object calls `migrate`, which also makes rustc and LLVM compile the
//! texts, the packed metadata and the baseline into the binary, as any
//! crate that embeds its migrations pays: `--use-schema` measures that,
//! with a `main` that also prints `SCHEMA`'s migration count and baseline
//! length (the control prints two constants instead).
//!
//! ```text
//! cargo bench --bench rebuild                # N = 10, 200, 1000; k = 5, cold k = 3
//! cargo bench --bench rebuild -- --quick     # smoke check: N = 10, one iteration
//! cargo bench --bench rebuild -- --sizes 10,200 --iters 3 --cold-iters 1
//! cargo bench --bench rebuild -- --sizes 1000 --use-schema
//! cargo bench --bench rebuild -- --sizes 200 --queries 100   # 100 checked queries vs plain calls
//! ```
//!
//! Without `--bench` (which `cargo bench` passes; `cargo test --benches`
//! does not) it runs the quick variant, as criterion runs each bench once in
//! test mode. The table goes to stdout (progress to stderr), ready to paste
//! into `benches/RESULTS.md`.

#[path = "../compiler/tests/common/chain.rs"]
mod chain;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::{Duration, Instant, SystemTime};

/// The generator's seed, as in `compiler/benches/check.rs`.
const SEED: u64 = 2026;

/// What the bench measures, from the command line.
struct Config {
    /// Chain lengths; all but a chain of one get the `one new` case.
    sizes: Vec<usize>,
    /// Iterations of `hit` and `one new`.
    iters: usize,
    /// Iterations of `cold`, seconds per build at 1000 migrations.
    cold_iters: usize,
    /// The measured crate's `main` reads `SCHEMA` too, so its data is
    /// compiled into the binary.
    use_schema: bool,
    /// With K > 0, what K checked queries cost instead: both crates carry
    /// the attribute, the measured one runs K `query!` calls and the control
    /// the same K statements with plain rusqlite calls, rows mapped by hand,
    /// and only the `hit` case runs (a warm rebuild).
    queries: usize,
}

const USAGE: &str = "usage: cargo bench --bench rebuild -- [--quick] [--sizes 10,200,1000] \
                     [--iters K] [--cold-iters K] [--use-schema] [--queries K]";

impl Config {
    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut config = Config {
            sizes: vec![10, 200, 1000],
            iters: 5,
            cold_iters: 3,
            use_schema: false,
            queries: 0,
        };
        let mut bench = false;
        let mut quick = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--bench" => bench = true,
                "--quick" | "--test" => quick = true,
                "--iters" => config.iters = count(&value("--iters")?)?,
                "--cold-iters" => config.cold_iters = count(&value("--cold-iters")?)?,
                "--use-schema" => config.use_schema = true,
                "--queries" => config.queries = count(&value("--queries")?)?,
                "--sizes" => {
                    config.sizes = value("--sizes")?
                        .split(',')
                        .map(count)
                        .collect::<Result<_, _>>()?
                }
                "--help" | "-h" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
        }
        if quick || !bench {
            // Every case once, on the smallest chain: does it all still work.
            config = Config {
                sizes: vec![10],
                iters: 1,
                cold_iters: 1,
                ..config
            };
        }
        Ok(config)
    }
}

fn count(text: &str) -> Result<usize, String> {
    match text.trim().parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{text}` is not a positive number\n{USAGE}")),
    }
}

/// A failure of the bench's own machinery, printed as is.
type Result<T, E = String> = std::result::Result<T, E>;

fn io<T>(what: impl std::fmt::Display, result: std::io::Result<T>) -> Result<T> {
    result.map_err(|e| format!("{what}: {e}"))
}

/// Where everything is built: the scratch directory, its shared target
/// directory, and Cargo.
struct Bench {
    scratch: PathBuf,
    target: PathBuf,
    cargo: PathBuf,
    /// The repository's root: the facade the crates depend on, and its lockfile.
    root: PathBuf,
}

/// A generated binary crate.
struct Krate {
    name: String,
    dir: PathBuf,
}

impl Krate {
    fn main_rs(&self) -> PathBuf {
        self.dir.join("src").join("main.rs")
    }

    fn migrations(&self) -> PathBuf {
        self.dir.join("migrations")
    }
}

/// The verdict cache a build uses: `off`, or a directory.
#[derive(Clone, Copy)]
enum Cache<'a> {
    Off,
    In(&'a Path),
}

impl Bench {
    fn new() -> Result<Self> {
        // Set by Cargo for benches: `<target dir>/tmp`.
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rebuild-bench");
        // The crates and caches of an earlier run go; their target
        // directory stays, so the dependencies are not compiled again.
        if scratch.exists() {
            for entry in io(scratch.display(), fs::read_dir(&scratch))? {
                let path = io(scratch.display(), entry)?.path();
                if path.file_name() != Some("target".as_ref()) {
                    io(path.display(), fs::remove_dir_all(&path))?;
                }
            }
        }
        let target = scratch.join("target");
        io(target.display(), fs::create_dir_all(&target))?;
        let cargo = std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from);
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        Ok(Self {
            scratch,
            target,
            cargo,
            root,
        })
    }

    /// Writes a binary crate `name` depending on the facade, with `main_rs`.
    fn krate(&self, name: &str, main_rs: &str) -> Result<Krate> {
        self.krate_with(name, main_rs, "", "")
    }

    /// [`Bench::krate`], with `features` of the facade (`, features = [...]`)
    /// and more `[dependencies]` lines.
    fn krate_with(&self, name: &str, main_rs: &str, features: &str, deps: &str) -> Result<Krate> {
        let dir = self.scratch.join(name);
        io(dir.display(), fs::create_dir_all(dir.join("src")))?;
        let facade = self.root.display().to_string().replace('\\', "/");
        let manifest = format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             # Not a member of the repository's workspace.\n[workspace]\n\n\
             [dependencies]\ndurable-schema = {{ path = \"{facade}\"{features} }}\n{deps}"
        );
        write(&dir.join("Cargo.toml"), &manifest)?;
        // The repository's versions, so nothing is resolved or fetched.
        let lock = self.root.join("Cargo.lock");
        io(lock.display(), fs::copy(&lock, dir.join("Cargo.lock")))?;
        let krate = Krate {
            name: name.to_owned(),
            dir,
        };
        write(&krate.main_rs(), main_rs)?;
        Ok(krate)
    }

    /// `cargo build --release --offline` in `krate`: its wall time and
    /// what Cargo printed, or why Cargo did not run.
    fn cargo_build(&self, krate: &Krate, cache: Cache) -> Result<(Duration, Output)> {
        let mut cmd = Command::new(&self.cargo);
        cmd.args(["build", "--release", "--offline"])
            .current_dir(&krate.dir)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("CARGO_TERM_COLOR", "never")
            .env("CARGO_TERM_PROGRESS_WHEN", "never");
        match cache {
            Cache::Off => cmd.env("DURABLE_SCHEMA_CACHE", "off"),
            Cache::In(dir) => cmd.env("DURABLE_SCHEMA_CACHE", dir),
        };
        let start = Instant::now();
        let out = io(format!("running {}", self.cargo.display()), cmd.output())?;
        Ok((start.elapsed(), out))
    }

    /// [`Bench::cargo_build`], which must succeed and compile the crate
    /// (else the time would not include the attribute's expansion); Cargo's
    /// output otherwise.
    fn build(&self, krate: &Krate, cache: Cache) -> Result<Duration> {
        let (took, out) = self.cargo_build(krate, cache)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!(
                "cargo build failed in {} ({}):\n{stderr}",
                krate.dir.display(),
                out.status
            ));
        }
        if !stderr.contains(&format!("Compiling {} ", krate.name)) {
            return Err(format!(
                "cargo build did not compile `{}` after the touch, so the attribute \
                 was not expanded again:\n{stderr}",
                krate.name
            ));
        }
        Ok(took)
    }

    /// Touches `src/main.rs` (the one change that re-expands the attribute
    /// whatever else changed) and builds: the time of both.
    fn touch_and_build(&self, krate: &Krate, cache: Cache) -> Result<Duration> {
        let start = Instant::now();
        let main_rs = krate.main_rs();
        let file = io(
            main_rs.display(),
            fs::File::options().write(true).open(&main_rs),
        )?;
        io(main_rs.display(), file.set_modified(SystemTime::now()))?;
        drop(file);
        self.build(krate, cache)?;
        Ok(start.elapsed())
    }

    /// What the built binary of `krate` prints.
    fn run(&self, krate: &Krate) -> Result<String> {
        let exe = self.target.join("release").join(format!(
            "{}{}",
            krate.name,
            std::env::consts::EXE_SUFFIX
        ));
        let out = io(exe.display(), Command::new(&exe).output())?;
        if !out.status.success() {
            return Err(format!("{} failed: {}", exe.display(), out.status));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Checks that `krate`'s binary reports `version`: the build embedded
    /// the chain it was meant to.
    fn expect_version(&self, krate: &Krate, version: usize) -> Result<()> {
        let printed = self.run(krate)?;
        // The version, then (`--use-schema`) the migration count, which
        // must be the same for the measured crate.
        let mut lines = printed.lines();
        let mut wrong = lines.next() != Some(version.to_string().as_str());
        if krate.name.starts_with("rebuild-") {
            wrong |= lines
                .next()
                .is_some_and(|count| count != version.to_string());
        }
        if wrong {
            return Err(format!(
                "{} prints `{printed}`, expected {version}",
                krate.name
            ));
        }
        Ok(())
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    io(path.display(), fs::write(path, text))
}

/// The files in a cache directory.
fn entries(cache: &Path) -> Result<Vec<PathBuf>> {
    io(cache.display(), fs::read_dir(cache))?
        .map(|e| io(cache.display(), e).map(|e| e.path()))
        .collect()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    let mid = times.len() / 2;
    if times.len() % 2 == 1 {
        times[mid]
    } else {
        (times[mid - 1] + times[mid]) / 2
    }
}

/// One row of the table.
struct Row {
    n: usize,
    case: &'static str,
    iters: usize,
    /// The medians of the crate's and the control's builds, or the
    /// compile error that stopped the crate's first build.
    outcome: Result<(Duration, Duration), String>,
}

/// The two crates for a chain of `n` migrations.
struct Size<'a> {
    bench: &'a Bench,
    n: usize,
    /// The measured crate without the attribute.
    control: Krate,
    /// The crate with the attribute on `migrations/`.
    subject: Krate,
}

impl Size<'_> {
    /// Times `iters` rounds of touch + build of the control, then of the
    /// subject (interleaved, so a change in the machine's load hits both),
    /// with `before` run ahead of each subject build and `after` behind it,
    /// untimed; the medians.
    fn measure(
        &self,
        case: &'static str,
        iters: usize,
        cache: Cache,
        mut before: impl FnMut() -> Result<()>,
        mut after: impl FnMut() -> Result<()>,
    ) -> Result<Row> {
        let mut controls = Vec::with_capacity(iters);
        let mut builds = Vec::with_capacity(iters);
        for i in 1..=iters {
            let control = self.bench.touch_and_build(&self.control, cache)?;
            before()?;
            let build = self.bench.touch_and_build(&self.subject, cache)?;
            after()?;
            eprintln!(
                "  {case} {i}/{iters}: {} (control {})",
                secs(build),
                secs(control)
            );
            controls.push(control);
            builds.push(build);
        }
        Ok(Row {
            n: self.n,
            case,
            iters,
            outcome: Ok((median(builds), median(controls))),
        })
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `build - control` in seconds, signed (noise can make it negative).
fn cost(build: Duration, control: Duration) -> String {
    format!("{:+.2} s", build.as_secs_f64() - control.as_secs_f64())
}

/// All cases for a chain of `n` migrations.
fn bench_size(bench: &Bench, config: &Config, n: usize, rows: &mut Vec<Row>) -> Result<()> {
    eprintln!("N = {n}");
    // Both print the same number of values, of the same types.
    let (control_uses, subject_uses) = if config.use_schema {
        (
            "    println!(\"{}\", 0usize);\n    println!(\"{}\", 0usize);\n",
            "    println!(\"{}\", Room::SCHEMA.migrations().len());\n    \
             println!(\"{}\", Room::SCHEMA.baseline().map_or(0, |b| b.sql().len()));\n",
        )
    } else {
        ("", "")
    };
    if config.queries > 0 {
        return bench_queries(bench, config, n, rows);
    }
    let control = bench.krate(
        &format!("control-n{n}"),
        &format!(
            "// The measured crate without the attribute.\n\
             use durable_schema as _;\n\n\
             struct Room;\n\n\
             impl Room {{\n    const CURRENT_SCHEMA_VERSION: u32 = {n};\n}}\n\n\
             fn main() {{\n    println!(\"{{}}\", Room::CURRENT_SCHEMA_VERSION);\n{control_uses}}}\n"
        ),
    )?;
    let subject = bench.krate(
        &format!("rebuild-n{n}"),
        &format!(
            "#[durable_schema::durable_schema(dir = \"migrations\")]\n\
             struct Room;\n\n\
             fn main() {{\n    println!(\"{{}}\", Room::CURRENT_SCHEMA_VERSION);\n{subject_uses}}}\n"
        ),
    )?;
    chain::write_chain(&subject.migrations(), n, SEED);
    let size = Size {
        bench,
        n,
        control,
        subject,
    };
    let subject = &size.subject;

    // First builds, untimed: the dependencies (on the first size of a fresh
    // target directory), the crates, and the verdict the `hit` case reads.
    let hit_cache = bench.scratch.join(format!("cache-n{n}"));
    let start = Instant::now();
    bench.build(&size.control, Cache::In(&hit_cache))?;
    let (_, out) = bench.cargo_build(subject, Cache::In(&hit_cache))?;
    eprintln!("  first builds: {}", secs(start.elapsed()));
    if !out.status.success() {
        // What a user with this history gets: a row that says so, and the
        // other sizes still run.
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("  {} does not compile:\n{stderr}", subject.name);
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or("cargo build failed")
            .to_owned();
        rows.push(Row {
            n,
            case: "all",
            iters: 0,
            outcome: Err(error),
        });
        return Ok(());
    }
    bench.expect_version(&size.control, n)?;
    bench.expect_version(subject, n)?;
    if !entries(&hit_cache)?
        .iter()
        .any(|p| p.extension() == Some("plan".as_ref()))
    {
        return Err(format!(
            "the build of {} stored no verdict in {}",
            subject.name,
            hit_cache.display()
        ));
    }

    let none = || Ok(());
    rows.push(size.measure("hit", config.iters, Cache::In(&hit_cache), none, none)?);
    rows.push(size.measure("cold", config.cold_iters, Cache::Off, none, none)?);

    // `one new` needs a checked migration before the new one.
    if n > 1 {
        // The N - 1 first migrations checked, their verdict and image in
        // the cache; then the N-th file arrives.
        let cache = bench.scratch.join(format!("cache-new-n{n}"));
        let (last, text) = chain::chain(n, SEED).pop().ok_or("an empty chain")?;
        let last = subject.migrations().join(last);
        io(last.display(), fs::remove_file(&last))?;
        // Touch: the crate was last built with the N migrations.
        bench.touch_and_build(subject, Cache::In(&cache))?;
        bench.expect_version(subject, n - 1)?;
        let prefix = entries(&cache)?;
        write(&last, &text)?;

        // Each iteration starts from only what the check of the N - 1 left:
        // no verdict for the N, no image of them.
        let reset = || {
            for f in entries(&cache)? {
                if !prefix.contains(&f) {
                    io(f.display(), fs::remove_file(&f))?;
                }
            }
            Ok(())
        };
        // And each must have checked the N (stored their verdict): proof
        // the macro ran with this cache.
        let stored = || {
            if entries(&cache)?.len() > prefix.len() {
                Ok(())
            } else {
                Err(format!(
                    "the build with {n} migrations stored nothing in {}",
                    cache.display()
                ))
            }
        };
        rows.push(size.measure("one new", config.iters, Cache::In(&cache), reset, stored)?);
        bench.expect_version(subject, n)?;
    }
    Ok(())
}

/// The statement of the `i`-th query: over `audit_log`, the table the
/// generated chain's first migration creates, each one distinct.
fn query_sql(i: usize) -> String {
    format!("SELECT id, action, at FROM audit_log WHERE row_id = ? AND id > {i} ORDER BY id")
}

/// `--queries K`: a warm rebuild of a crate running K checked queries on
/// rusqlite against the same crate running the K statements with plain
/// rusqlite calls and rows mapped by hand, both with the attribute on the
/// chain of `n` (and migrating an in-memory database with it).
fn bench_queries(bench: &Bench, config: &Config, n: usize, rows: &mut Vec<Row>) -> Result<()> {
    let k = config.queries;
    let mut plain = String::new();
    let mut checked = String::new();
    for i in 0..k {
        let sql = query_sql(i);
        plain.push_str(&format!(
            "    let rows: Vec<(i64, String, String)> = conn\n        .prepare({sql:?})\n        .unwrap()\n        \
             .query_map([1i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))\n        .unwrap()\n        \
             .collect::<Result<_, _>>()\n        .unwrap();\n    std::hint::black_box(rows);\n"
        ));
        checked.push_str(&format!(
            "    std::hint::black_box(durable_schema::query!(Room, {sql:?}, 1i64).fetch_all(&conn).unwrap());\n"
        ));
    }
    let source = |body: &str| {
        format!(
            "#[durable_schema::durable_schema(dir = \"migrations\")]\n\
             struct Room;\n\n\
             fn main() {{\n    println!(\"{{}}\", Room::CURRENT_SCHEMA_VERSION);\n    \
             let conn = rusqlite::Connection::open_in_memory().unwrap();\n    \
             Room::migrate(&conn).unwrap();\n{body}}}\n"
        )
    };
    let features = ", default-features = false, features = [\"rusqlite\"]";
    let deps = "rusqlite = { version = \"0.40\", default-features = false }\n";
    let control = bench.krate_with(&format!("plain-n{n}-q{k}"), &source(&plain), features, deps)?;
    let subject = bench.krate_with(
        &format!("rebuild-n{n}-q{k}"),
        &source(&checked),
        features,
        deps,
    )?;
    chain::write_chain(&control.migrations(), n, SEED);
    chain::write_chain(&subject.migrations(), n, SEED);
    let cache = bench.scratch.join(format!("cache-n{n}-q{k}"));
    let start = Instant::now();
    bench.build(&control, Cache::In(&cache))?;
    bench.build(&subject, Cache::In(&cache))?;
    eprintln!("  first builds: {}", secs(start.elapsed()));
    bench.expect_version(&control, n)?;
    bench.expect_version(&subject, n)?;
    let size = Size {
        bench,
        n,
        control,
        subject,
    };
    let none = || Ok(());
    rows.push(size.measure("hit", config.iters, Cache::In(&cache), none, none)?);
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| N | case | k | median build | control | macro cost |\n\
         | ---: | --- | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let (n, case, k) = (row.n, row.case, row.iters);
        out.push_str(&match &row.outcome {
            Ok((build, control)) => format!(
                "| {n} | {case} | {k} | {} | {} | {} |\n",
                secs(*build),
                secs(*control),
                cost(*build, *control)
            ),
            Err(error) => format!("| {n} | {case} | | does not compile: `{error}` | | |\n"),
        });
    }
    out
}

/// The one-minute load average (Linux only): the numbers are wall times,
/// so the record says how busy the machine was.
fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn run(config: &Config) -> Result<Vec<Row>> {
    let bench = Bench::new()?;
    eprintln!(
        "crates and caches in {}, target dir {}",
        bench.scratch.display(),
        bench.target.display()
    );
    let mut rows = Vec::new();
    for &n in &config.sizes {
        bench_size(&bench, config, n, &mut rows)?;
    }
    Ok(rows)
}

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let load_before = load();
    match run(&config) {
        Ok(rows) => {
            let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
            println!(
                "\nMacro cost per rebuild: touch src/main.rs + cargo build --release --offline, \
                 median of k, minus the control crate without the attribute \
                 ({cpus} CPUs, load average {load_before} before and {} after; {:.0} s in all).\n",
                load(),
                start.elapsed().as_secs_f64()
            );
            print!("{}", table(&rows));
            // A crate that does not compile is a failure of the attribute,
            // even if the rest of the table could be measured.
            if rows.iter().any(|r| r.outcome.is_err()) {
                eprintln!("rebuild bench: a generated crate does not compile (see the table)");
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("rebuild bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}
