//! The commands that README.md and docs/*.md show a user are real.
//!
//! Every line of a fenced code block that invokes `kcnode` or `kcctl`
//! (also after `$ `, `sudo `, `VAR=value` or `nsenter ...`, and after `;`,
//! `&&` or `|` on the line) is walked word by word against the built
//! binaries: each word where the command expects a subcommand must be one
//! (`<bin> <path...> <word> --help` succeeds; hidden subcommands count),
//! and each `--flag` (and `-x` before the first positional argument) must
//! appear in `<bin> <path...> --help`, or, for hidden flags, be accepted by
//! the parser. Nothing is run but `--help`.
//!
//! Scripts the docs name (`testnet/*.sh`, `bench/*.sh`, `tests/*.sh`) must
//! exist, and a `--flag` given to one in a code block must appear in the
//! script's text (where its argument loop, or the program it hands its
//! arguments to, is). Relative links must point to files that exist.
//!
//! Limits, on purpose: an argument after a command's first positional
//! argument that starts with a single `-` is not checked (it may belong to
//! the command a container runs, as in `kcnode run busybox httpd -f`), and
//! flags after `--` are not checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// README.md and every docs/*.md, as (path relative to the repo, text).
fn docs() -> Vec<(String, String)> {
    let root = repo();
    let mut paths = vec![root.join("README.md")];
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("readable docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    in_docs.sort();
    paths.extend(in_docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let rel = p.strip_prefix(&root).unwrap_or(&p).display().to_string();
            (rel, text)
        })
        .collect()
}

/// One shell line of a code block: where it starts, and its text with
/// `\`-continuations joined.
#[derive(Debug)]
struct CodeLine {
    line: usize,
    text: String,
}

fn code_lines(text: &str) -> Vec<CodeLine> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending: Option<CodeLine> = None;
    for (i, raw) in text.lines().enumerate() {
        if raw.trim_start().starts_with("```") {
            in_block = !in_block;
            pending = None;
            continue;
        }
        if !in_block {
            continue;
        }
        let (body, continues) = match raw.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (raw, false),
        };
        let mut cur = pending.take().unwrap_or(CodeLine {
            line: i + 1,
            text: String::new(),
        });
        cur.text.push(' ');
        cur.text.push_str(body);
        if continues {
            pending = Some(cur);
        } else {
            out.push(cur);
        }
    }
    out
}

/// Splits a shell line into simple commands (at unquoted `;`, `&`, `|`,
/// `&&`, `||`), each a list of words with quotes removed; an unquoted `#`
/// that starts a word ends the line.
fn commands(line: &str) -> Vec<Vec<String>> {
    let mut cmds = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let end_word = |word: &mut String, in_word: &mut bool, words: &mut Vec<String>| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    in_word = true;
                }
                '#' if !in_word => break,
                ';' | '&' | '|' => {
                    end_word(&mut word, &mut in_word, &mut words);
                    if !words.is_empty() {
                        cmds.push(std::mem::take(&mut words));
                    }
                }
                c if c.is_whitespace() => end_word(&mut word, &mut in_word, &mut words),
                c => {
                    word.push(c);
                    in_word = true;
                }
            },
        }
    }
    end_word(&mut word, &mut in_word, &mut words);
    if !words.is_empty() {
        cmds.push(words);
    }
    cmds
}

/// The program a simple command runs and its arguments, after a prompt,
/// `sudo`, `env`, `VAR=value` assignments, `nsenter` and its options, and
/// the shell keywords that may lead a command.
fn program(words: &[String]) -> Option<(&str, &[String])> {
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let assignment = w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if matches!(
            w,
            "$" | "sudo" | "env" | "time" | "exec" | "nohup" | "do" | "then" | "else" | "nsenter"
        ) || assignment
        {
            i += 1;
            // nsenter's options run up to the program.
            if w == "nsenter" {
                while i < words.len() && words[i].starts_with('-') {
                    i += 1;
                }
            }
            continue;
        }
        return Some((w, &words[i + 1..]));
    }
    None
}

/// Which kc binary a program word names, if any.
fn kc_binary(program: &str) -> Option<&'static str> {
    match program.rsplit('/').next() {
        Some("kcnode") => Some("kcnode"),
        Some("kcctl") => Some("kcctl"),
        _ => None,
    }
}

/// Whether an option takes a value, as its `--help` line shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Takes {
    Nothing,
    Value,
    OptionalValue,
}

/// What one `<bin> <path...> --help` says.
#[derive(Debug, Clone)]
struct Help {
    /// The command expects a subcommand (its help has a `Commands:` list).
    has_subcommands: bool,
    /// The command cannot run without a subcommand (every usage line ends
    /// in `<COMMAND>`, not a positional `<COMMAND>...`).
    requires_subcommand: bool,
    /// The command takes positional arguments (its usage names some).
    positionals: bool,
    /// Every `--long` and `-s` option, and what it takes.
    flags: HashMap<String, Takes>,
}

impl Help {
    fn parse(text: &str) -> Help {
        let mut flags = HashMap::new();
        for line in text.lines() {
            let t = line.trim_start();
            if !t.starts_with('-') {
                continue;
            }
            let mut names = Vec::new();
            let mut takes = Takes::Nothing;
            for tok in t.split_whitespace() {
                let tok = tok.trim_end_matches(',');
                if tok.starts_with("--") || (tok.starts_with('-') && tok.len() == 2) {
                    names.push(tok.to_string());
                } else {
                    if tok.starts_with("[<") {
                        takes = Takes::OptionalValue;
                    } else if tok.starts_with('<') {
                        takes = Takes::Value;
                    }
                    break;
                }
            }
            for n in names {
                flags.insert(n, takes);
            }
        }
        let positionals = text
            .lines()
            .skip_while(|l| !l.starts_with("Usage:"))
            .take_while(|l| !l.trim().is_empty())
            .flat_map(|l| l.split_whitespace())
            .any(|w| {
                (w.starts_with('<') || w.starts_with('['))
                    && !matches!(w, "[OPTIONS]" | "<COMMAND>" | "[COMMAND]")
            });
        let usages: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("Usage:"))
            .take_while(|l| !l.trim().is_empty())
            .collect();
        Help {
            has_subcommands: text.lines().any(|l| l.trim_end() == "Commands:"),
            requires_subcommand: !usages.is_empty()
                && usages
                    .iter()
                    .all(|l| l.split_whitespace().any(|w| w == "<COMMAND>")),
            positionals,
            flags,
        }
    }
}

/// Runs `--help` of the kc binaries, once per command path.
struct Helper {
    bins: HashMap<&'static str, PathBuf>,
    cache: HashMap<(String, Vec<String>), Option<Help>>,
    /// A data dir no probe may touch anything real in.
    scratch: PathBuf,
}

impl Helper {
    fn new() -> Helper {
        let scratch = std::env::temp_dir().join(format!("kc-docs-commands-{}", std::process::id()));
        Helper {
            bins: [
                ("kcnode", kc_tests::bin("kcnode")),
                ("kcctl", kc_tests::bin("kcctl")),
            ]
            .into_iter()
            .collect(),
            cache: HashMap::new(),
            scratch,
        }
    }

    fn run(&self, bin: &str, args: &[String]) -> std::process::Output {
        Command::new(&self.bins[bin])
            .args(args)
            .env("KC_DATA_DIR", &self.scratch)
            .env("KUBECONFIG", self.scratch.join("no-kubeconfig"))
            .env_remove("RUST_LOG")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
    }

    /// The help of `bin path...`, or None if that is not a command.
    fn help(&mut self, bin: &str, path: &[String]) -> Option<Help> {
        let key = (bin.to_string(), path.to_vec());
        if let Some(h) = self.cache.get(&key) {
            return h.clone();
        }
        let mut args = path.to_vec();
        args.push("--help".into());
        let out = self.run(bin, &args);
        let help = out
            .status
            .success()
            .then(|| Help::parse(&String::from_utf8_lossy(&out.stdout)));
        self.cache.insert(key, help.clone());
        help
    }

    /// Whether a flag that `--help` does not list (a hidden one) is still
    /// accepted: clap then fails on `--help` for another reason than an
    /// unknown argument. Only asked of commands that take no positional
    /// arguments, so `--help` cannot be taken as one.
    fn accepts_hidden(&self, bin: &str, path: &[String], flag: &str) -> bool {
        let mut args = path.to_vec();
        args.push(flag.to_string());
        args.push("--help".into());
        let out = self.run(bin, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        !err.contains(&format!("unexpected argument '{flag}'"))
    }

    /// Checks one invocation; returns what is wrong with it.
    fn check(&mut self, bin: &str, args: &[String]) -> Result<(), String> {
        let mut path: Vec<String> = Vec::new();
        let mut help = self
            .help(bin, &path)
            .ok_or_else(|| format!("`{bin} --help` failed"))?;
        let mut positional = false;
        let mut i = 0;
        while i < args.len() {
            // `[--purge]`: an optional flag, written as usage text.
            let w = args[i]
                .strip_prefix('[')
                .and_then(|w| w.strip_suffix(']'))
                .filter(|w| w.starts_with('-'))
                .unwrap_or(&args[i]);
            let here = || {
                if path.is_empty() {
                    bin.to_string()
                } else {
                    format!("{bin} {}", path.join(" "))
                }
            };
            if w == "--" {
                break;
            }
            if let Some(long) = w.strip_prefix("--").filter(|l| !l.is_empty()) {
                let (name, has_value) = match long.split_once('=') {
                    Some((n, _)) => (format!("--{n}"), true),
                    None => (format!("--{long}"), false),
                };
                match help.flags.get(&name) {
                    Some(Takes::Value) if !has_value => i += 1,
                    Some(_) => {}
                    None => {
                        let hidden_ok = !help.positionals && self.accepts_hidden(bin, &path, &name);
                        if !hidden_ok {
                            return Err(format!(
                                "`{}` does not accept the flag `{name}` (not in `{} --help`)",
                                here(),
                                here()
                            ));
                        }
                    }
                }
            } else if w.len() > 1
                && w.starts_with('-')
                && !w[1..].starts_with(|c: char| c.is_ascii_digit())
            {
                if !positional {
                    let shorts: Vec<char> = w[1..].chars().collect();
                    for (k, c) in shorts.iter().enumerate() {
                        let name = format!("-{c}");
                        match help.flags.get(&name) {
                            Some(Takes::Value) => {
                                if k + 1 == shorts.len() {
                                    i += 1;
                                }
                                break;
                            }
                            Some(_) => {}
                            None => {
                                return Err(format!(
                                    "`{}` does not accept the flag `{name}` (not in `{} --help`)",
                                    here(),
                                    here()
                                ));
                            }
                        }
                    }
                }
            } else if help.has_subcommands && !positional {
                let mut next = path.clone();
                next.push(w.to_string());
                match self.help(bin, &next) {
                    Some(h) => {
                        path = next;
                        help = h;
                    }
                    None => {
                        return Err(format!("`{}` has no subcommand `{w}`", here()));
                    }
                }
            } else {
                positional = true;
            }
            i += 1;
        }
        if help.requires_subcommand {
            return Err(format!(
                "`{bin} {}` needs a subcommand, and the line gives none",
                path.join(" ")
            ));
        }
        Ok(())
    }
}

#[test]
fn every_kcnode_and_kcctl_command_in_the_docs_exists_with_its_flags() {
    let mut helper = Helper::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, text) in docs() {
        for cl in code_lines(&text) {
            for words in commands(&cl.text) {
                let Some((prog, args)) = program(&words) else {
                    continue;
                };
                let Some(bin) = kc_binary(prog) else {
                    continue;
                };
                checked += 1;
                if let Err(why) = helper.check(bin, args) {
                    problems.push(format!(
                        "{file}:{}: `{} {}`: {why}",
                        cl.line,
                        bin,
                        args.join(" ")
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&helper.scratch);
    assert!(
        checked >= 50,
        "found only {checked} kcnode/kcctl commands in README.md and docs/: is the code-block parser broken?"
    );
    assert!(
        problems.is_empty(),
        "{} of {checked} documented commands do not exist as written:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Paths like `testnet/up.sh` or `bench/store.sh` anywhere in `text`.
fn script_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["testnet/", "bench/", "tests/"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let before_ok = rest[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '.'));
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/_.-".contains(c)))
                .unwrap_or(tail.len());
            let candidate = tail[..end].trim_end_matches('.');
            if before_ok && (candidate.ends_with(".sh") || candidate.ends_with(".py")) {
                out.push(candidate.to_string());
            }
            rest = &rest[at + prefix.len()..];
        }
    }
    out
}

#[test]
fn every_script_the_docs_name_exists_and_takes_the_flags_shown() {
    let root = repo();
    let mut problems = Vec::new();
    for (file, text) in docs() {
        for (n, line) in text.lines().enumerate() {
            for script in script_paths(line) {
                if !root.join(&script).is_file() {
                    problems.push(format!(
                        "{file}:{}: names `{script}`, which does not exist",
                        n + 1
                    ));
                }
            }
        }
        for cl in code_lines(&text) {
            for words in commands(&cl.text) {
                let Some((prog, args)) = program(&words) else {
                    continue;
                };
                let script = root.join(prog);
                if !(prog.ends_with(".sh") && script.is_file()) {
                    continue;
                }
                let source = std::fs::read_to_string(&script).unwrap_or_default();
                for a in args.iter().take_while(|a| *a != "--") {
                    let flag = a.split('=').next().unwrap_or(a);
                    if flag.starts_with("--") && flag.len() > 2 && !source.contains(flag) {
                        problems.push(format!(
                            "{file}:{}: `{prog}` is given `{flag}`, which the script does not mention",
                            cl.line
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "documented scripts that are missing or take other flags:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_relative_link_in_the_docs_points_to_a_file() {
    let root = repo();
    let mut problems = Vec::new();
    for (file, text) in docs() {
        let dir = root
            .join(&file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or(root.clone());
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("](") {
                let tail = &rest[at + 2..];
                let Some(end) = tail.find(')') else { break };
                let target = tail[..end].split('#').next().unwrap_or("");
                if !target.is_empty() && !target.contains("://") && !dir.join(target).exists() {
                    problems.push(format!(
                        "{file}:{}: the link `{target}` points to nothing",
                        n + 1
                    ));
                }
                rest = &tail[end..];
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn command_lines_are_found_after_prompts_sudo_env_and_continuations() {
    let text = "text kcnode ignored\n```sh\n$ sudo kcnode run --rm \\\n    busybox echo 'a; b' # note\nX=1 kcctl get pods ; curl x && target/debug/kcctl version\n```\n";
    let lines = code_lines(text);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0].line, 3);
    let first = commands(&lines[0].text);
    assert_eq!(first.len(), 1);
    let (prog, args) = program(&first[0]).expect("a program");
    assert_eq!(kc_binary(prog), Some("kcnode"));
    assert_eq!(args, ["run", "--rm", "busybox", "echo", "a; b"]);
    let second: Vec<_> = commands(&lines[1].text)
        .iter()
        .filter_map(|w| program(w).and_then(|(p, _)| kc_binary(p)))
        .collect();
    assert_eq!(second, ["kcctl", "kcctl"]);
    assert_eq!(
        script_paths("run `testnet/up.sh` then bench/store.sh."),
        ["testnet/up.sh", "bench/store.sh"]
    );
}
