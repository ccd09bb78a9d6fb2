//! Dockerfile parsing: text -> instructions with their line numbers. Pure.
//!
//! Handles parser directives (`# escape=`), comments, line continuations,
//! exec (JSON) vs shell forms, and Docker's word rules (quotes, escapes,
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`). Variables are not
//! expanded here: their values change as the build runs ARG and ENV, so
//! the builder calls [`expand`] on each word when it executes the step.

use std::collections::BTreeMap;

use super::error::{ImageError, Result};
use super::oci::Healthcheck;

/// One instruction, from the logical line starting at `line` (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub line: usize,
    /// The instruction as written (continuations joined), for output and the cache key.
    pub text: String,
    pub kind: Kind,
}

/// RUN, CMD and ENTRYPOINT take a command in one of two forms.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandForm {
    /// `["prog", "arg"]`: run as is.
    Exec(Vec<String>),
    /// `prog arg`: run by `/bin/sh -c`.
    Shell(String),
}

impl CommandForm {
    /// The argv to run; shell form through `shell` (default `/bin/sh -c`).
    pub fn argv(&self, shell: Option<&[String]>) -> Vec<String> {
        match self {
            CommandForm::Exec(v) => v.clone(),
            CommandForm::Shell(s) => {
                let mut argv = match shell {
                    Some(sh) if !sh.is_empty() => sh.to_vec(),
                    _ => vec!["/bin/sh".to_string(), "-c".to_string()],
                };
                argv.push(s.clone());
                argv
            }
        }
    }
}

/// COPY / ADD arguments (words unexpanded).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CopyArgs {
    pub sources: Vec<String>,
    pub dest: String,
    pub chown: Option<String>,
    pub from: Option<String>,
    /// `--chmod=0755`: octal mode for everything copied.
    pub chmod: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    From {
        image: String,
        alias: Option<String>,
    },
    Run(CommandForm),
    Copy(CopyArgs),
    Add(CopyArgs),
    /// `(key, value)` pairs, words unexpanded.
    Env(Vec<(String, String)>),
    Arg {
        name: String,
        default: Option<String>,
    },
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    Cmd(CommandForm),
    Entrypoint(CommandForm),
    StopSignal(String),
    /// Mount points for anonymous volumes (recorded in the config).
    Volume(Vec<String>),
    /// The shell for later shell-form commands (exec form only).
    Shell(Vec<String>),
    /// Deprecated author field.
    Maintainer(String),
    Healthcheck(Healthcheck),
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Vec<Instruction>> {
    let escape = escape_directive(text)?;
    let mut out = Vec::new();
    for (line, logical) in logical_lines(text, escape) {
        out.push(parse_instruction(line, &logical, escape)?);
    }
    if out.is_empty() {
        return Err(ImageError::invalid("the Dockerfile has no instructions"));
    }
    if !matches!(out[0].kind, Kind::From { .. } | Kind::Arg { .. }) {
        return Err(err(
            out[0].line,
            "the first instruction must be FROM (or ARG before FROM)",
        ));
    }
    Ok(out)
}

fn err(line: usize, msg: impl std::fmt::Display) -> ImageError {
    ImageError::invalid(format!("Dockerfile line {line}: {msg}"))
}

/// The `# escape=` parser directive at the top, if any (default `\`).
fn escape_directive(text: &str) -> Result<char> {
    for (i, line) in text.lines().enumerate() {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "escape" => {
                return match value.trim() {
                    "\\" => Ok('\\'),
                    "`" => Ok('`'),
                    v => Err(err(
                        i + 1,
                        format!("invalid escape directive {v:?}: use \\ or `"),
                    )),
                };
            }
            "syntax" | "check" => continue,
            _ => break,
        }
    }
    Ok('\\')
}

/// Joins continuation lines and drops comments and blank lines; yields
/// (first line number, text).
fn logical_lines(text: &str, escape: char) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        let (body, continues) = match raw.trim_end().strip_suffix(escape) {
            Some(body) => (body, true),
            None => (raw.trim_end(), false),
        };
        let entry = current.get_or_insert_with(|| (i + 1, String::new()));
        entry.1.push_str(if entry.1.is_empty() {
            body.trim_start()
        } else {
            body
        });
        if !continues {
            let (line, mut logical) = current.take().expect("just inserted");
            // Here-documents (`RUN <<EOF ... EOF`): their lines belong to
            // the instruction, comments and blank lines included.
            for word in heredoc_words(&logical) {
                for (_, body) in lines.by_ref() {
                    logical.push('\n');
                    logical.push_str(body);
                    if body.trim() == word {
                        break;
                    }
                }
            }
            out.push((line, logical));
        }
    }
    out.extend(current);
    out
}

/// The terminators of the here-documents a RUN line opens (`<<EOF`,
/// `<<-EOF`, `<<'EOF'`, `<<"EOF"`), in order.
fn heredoc_words(line: &str) -> Vec<String> {
    let is_run = line
        .split_whitespace()
        .next()
        .is_some_and(|k| k.eq_ignore_ascii_case("RUN"));
    if !is_run {
        return Vec::new();
    }
    let mut words = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("<<") {
        let mut tail = &rest[at + 2..];
        tail = tail.strip_prefix('-').unwrap_or(tail);
        let quote = tail.chars().next().filter(|c| *c == '\'' || *c == '"');
        if let Some(q) = quote {
            tail = &tail[1..];
            let end = tail.find(q).unwrap_or(tail.len());
            words.push(tail[..end].to_string());
            rest = &tail[end..];
            continue;
        }
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if len > 0 && !tail.starts_with(|c: char| c.is_ascii_digit()) {
            words.push(tail[..len].to_string());
        }
        rest = &tail[len..];
    }
    words
}

fn parse_instruction(line: usize, text: &str, escape: char) -> Result<Instruction> {
    let (keyword, rest) = match text.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (text, ""),
    };
    let upper = keyword.to_ascii_uppercase();
    let need_args = |what: &str| {
        if rest.is_empty() {
            Err(err(line, format!("{upper} needs {what}")))
        } else {
            Ok(())
        }
    };
    let kind = match upper.as_str() {
        "FROM" => {
            need_args("an image")?;
            let words: Vec<String> = split_raw(rest, escape)
                .into_iter()
                .filter(|w| !w.starts_with("--platform="))
                .collect();
            match words.as_slice() {
                [image] => Kind::From {
                    image: image.clone(),
                    alias: None,
                },
                [image, as_kw, alias] if as_kw.eq_ignore_ascii_case("as") => Kind::From {
                    image: image.clone(),
                    alias: Some(alias.to_ascii_lowercase()),
                },
                _ => return Err(err(line, "FROM takes an image and optionally AS name")),
            }
        }
        "RUN" => {
            need_args("a command")?;
            match heredoc_script(rest) {
                Some(script) => Kind::Run(CommandForm::Shell(script)),
                None => Kind::Run(command_form(line, rest)?),
            }
        }
        "CMD" => {
            need_args("a command")?;
            Kind::Cmd(command_form(line, rest)?)
        }
        "ENTRYPOINT" => {
            need_args("a command")?;
            Kind::Entrypoint(command_form(line, rest)?)
        }
        "COPY" | "ADD" => {
            need_args("a source and a destination")?;
            let args = copy_args(line, &upper, rest, escape)?;
            if upper == "COPY" {
                Kind::Copy(args)
            } else {
                Kind::Add(args)
            }
        }
        "ENV" => {
            need_args("NAME=value")?;
            Kind::Env(key_values(line, "ENV", rest, escape, true)?)
        }
        "LABEL" => {
            need_args("key=value")?;
            Kind::Label(key_values(line, "LABEL", rest, escape, false)?)
        }
        "ARG" => {
            let words = split_raw(rest, escape);
            let [word] = words.as_slice() else {
                return Err(err(line, "ARG takes one NAME or NAME=default"));
            };
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (word.clone(), None),
            };
            check_name(line, &name)?;
            Kind::Arg { name, default }
        }
        "WORKDIR" => {
            need_args("a directory")?;
            Kind::Workdir(rest.to_string())
        }
        "USER" => {
            need_args("a user")?;
            Kind::User(rest.to_string())
        }
        "EXPOSE" => {
            need_args("a port")?;
            Kind::Expose(split_raw(rest, escape))
        }
        "STOPSIGNAL" => {
            need_args("a signal")?;
            Kind::StopSignal(rest.to_string())
        }
        "VOLUME" => {
            need_args("a path")?;
            let paths = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) if rest.starts_with('[') => v,
                _ => split_raw(rest, escape),
            };
            Kind::Volume(paths)
        }
        "SHELL" => match serde_json::from_str::<Vec<String>>(rest) {
            Ok(v) if !v.is_empty() => Kind::Shell(v),
            _ => {
                return Err(err(
                    line,
                    "SHELL takes a JSON array, e.g. [\"/bin/bash\", \"-c\"]",
                ));
            }
        },
        "MAINTAINER" => {
            need_args("a name")?;
            Kind::Maintainer(rest.to_string())
        }
        "HEALTHCHECK" => {
            need_args("CMD command or NONE")?;
            Kind::Healthcheck(healthcheck(line, rest)?)
        }
        "ONBUILD" => {
            return Err(err(
                line,
                format!("{upper} is not supported by kcnode build"),
            ));
        }
        _ => return Err(err(line, format!("unknown instruction {keyword:?}"))),
    };
    Ok(Instruction {
        line,
        text: format!("{upper} {rest}").trim_end().to_string(),
        kind,
    })
}

/// `RUN <<EOF` + lines + `EOF`: the lines are the script to run.
fn heredoc_script(rest: &str) -> Option<String> {
    let (first, body) = rest.split_once('\n')?;
    let word = heredoc_words(&format!("RUN {first}")).into_iter().next()?;
    if !first.trim_start().starts_with("<<") || first.split_whitespace().count() != 1 {
        return None;
    }
    let body = body.strip_suffix(word.as_str()).unwrap_or(body);
    Some(body.trim_end_matches('\n').to_string())
}

/// JSON array of strings = exec form; anything else = shell form (as Docker).
fn command_form(line: usize, rest: &str) -> Result<CommandForm> {
    let exec = rest
        .starts_with('[')
        .then(|| serde_json::from_str::<Vec<String>>(rest).ok())
        .flatten();
    if let Some(v) = exec {
        if v.is_empty() {
            return Err(err(line, "an exec-form command needs at least one element"));
        }
        return Ok(CommandForm::Exec(v));
    }
    Ok(CommandForm::Shell(rest.to_string()))
}

fn copy_args(line: usize, keyword: &str, rest: &str, escape: char) -> Result<CopyArgs> {
    let mut args = CopyArgs::default();
    let mut rest = rest;
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let (name, value) = word.split_once('=').ok_or_else(|| {
            err(
                line,
                format!("{keyword} flag --{word} needs a value (--{word}=...)"),
            )
        })?;
        match name {
            "chown" => args.chown = Some(value.to_string()),
            "from" => args.from = Some(value.to_string()),
            "chmod" => {
                let mode = u32::from_str_radix(value, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        err(
                            line,
                            format!("--chmod={value}: want an octal mode like 0755"),
                        )
                    })?;
                args.chmod = Some(mode);
            }
            "link" => {}
            _ => return Err(err(line, format!("unknown {keyword} flag --{name}"))),
        }
        rest = tail.trim_start();
    }
    let words = if rest.starts_with('[') {
        serde_json::from_str::<Vec<String>>(rest)
            .map_err(|e| err(line, format!("bad JSON array: {e}")))?
    } else {
        split_raw(rest, escape)
    };
    if words.len() < 2 {
        return Err(err(
            line,
            format!("{keyword} needs at least one source and a destination"),
        ));
    }
    args.dest = words[words.len() - 1].clone();
    args.sources = words[..words.len() - 1].to_vec();
    Ok(args)
}

/// `k=v k2="v 2"` pairs; with `legacy`, also `ENV key the rest`.
fn key_values(
    line: usize,
    keyword: &str,
    rest: &str,
    escape: char,
    legacy: bool,
) -> Result<Vec<(String, String)>> {
    let words = split_raw(rest, escape);
    if legacy && !words[0].contains('=') {
        let (key, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        check_name(line, key)?;
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    words
        .iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| err(line, format!("{keyword} expects key=value, got {w:?}")))?;
            if k.is_empty() {
                return Err(err(line, format!("{keyword}: empty key in {w:?}")));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--retries=N] CMD ...` or `NONE`.
fn healthcheck(line: usize, rest: &str) -> Result<Healthcheck> {
    let mut hc = Healthcheck::default();
    let mut rest = rest;
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let (name, value) = word
            .split_once('=')
            .ok_or_else(|| err(line, format!("HEALTHCHECK flag --{word} needs a value")))?;
        let bad = || {
            err(
                line,
                format!("HEALTHCHECK --{name}={value}: not a valid value"),
            )
        };
        match name {
            "interval" => hc.interval = go_duration(value).ok_or_else(bad)?,
            "timeout" => hc.timeout = go_duration(value).ok_or_else(bad)?,
            "start-period" => hc.start_period = go_duration(value).ok_or_else(bad)?,
            "start-interval" => {}
            "retries" => hc.retries = value.parse().map_err(|_| bad())?,
            _ => return Err(err(line, format!("unknown HEALTHCHECK flag --{name}"))),
        }
        rest = tail.trim_start();
    }
    let (kw, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    hc.test = match kw.to_ascii_uppercase().as_str() {
        "NONE" if cmd.trim().is_empty() => vec!["NONE".to_string()],
        "CMD" if !cmd.trim().is_empty() => match command_form(line, cmd.trim())? {
            CommandForm::Exec(argv) => std::iter::once("CMD".to_string()).chain(argv).collect(),
            CommandForm::Shell(s) => vec!["CMD-SHELL".to_string(), s],
        },
        _ => return Err(err(line, "HEALTHCHECK takes CMD command or NONE")),
    };
    Ok(hc)
}

/// A Go duration (`30s`, `1m30s`, `500ms`, `1h`) in nanoseconds.
fn go_duration(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total = total.checked_add((number * scale) as u64)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn check_name(line: usize, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(err(line, format!("invalid variable name {name:?}")))
    }
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words
/// (they are processed by [`expand`]).
pub fn split_raw(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, c) if c == escape => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Processes one word: removes quotes and escapes, expands variables from
/// `vars` (unset ones are empty). `line` is for errors.
pub fn expand(word: &str, vars: &BTreeMap<String, String>, line: usize) -> Result<String> {
    let mut out = String::new();
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    let mut in_double = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' if !in_double => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .ok_or_else(|| err(line, format!("unterminated single quote in {word:?}")))?;
                out.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
            }
            '"' => {
                in_double = !in_double;
                i += 1;
            }
            '\\' if i + 1 < chars.len() => {
                let n = chars[i + 1];
                if in_double && !matches!(n, '"' | '\\' | '$') {
                    out.push('\\');
                }
                out.push(n);
                i += 2;
            }
            '$' => {
                let (value, used) = variable(&chars[i + 1..], vars, line, word)?;
                out.push_str(&value);
                i += 1 + used;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    if in_double {
        return Err(err(line, format!("unterminated double quote in {word:?}")));
    }
    Ok(out)
}

/// After a `$`: the value and how many chars were consumed.
fn variable(
    rest: &[char],
    vars: &BTreeMap<String, String>,
    line: usize,
    word: &str,
) -> Result<(String, usize)> {
    let get = |name: &str| vars.get(name).cloned();
    if rest.first() == Some(&'{') {
        let end = rest
            .iter()
            .position(|&c| c == '}')
            .ok_or_else(|| err(line, format!("unterminated ${{ in {word:?}")))?;
        let inner: String = rest[1..end].iter().collect();
        let value = if let Some((name, default)) = inner.split_once(":-") {
            get(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        } else if let Some((name, alt)) = inner.split_once(":+") {
            get(name)
                .filter(|v| !v.is_empty())
                .map(|_| alt.to_string())
                .unwrap_or_default()
        } else if let Some((name, default)) = inner.split_once('-') {
            get(name).unwrap_or_else(|| default.to_string())
        } else {
            get(&inner).unwrap_or_default()
        };
        return Ok((value, end + 1));
    }
    let len = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
        .count();
    if len == 0 {
        return Ok(("$".to_string(), 0));
    }
    let name: String = rest[..len].iter().collect();
    Ok((get(&name).unwrap_or_default(), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Kind> {
        parse(text).unwrap().into_iter().map(|i| i.kind).collect()
    }

    #[test]
    fn parses_the_seed_dockerfile() {
        let text = "FROM python:3\n\nRUN mkdir /opt/app && \\\n    python3 -m venv /opt/venv && \\\n    /opt/venv/bin/pip install flask\n\nCOPY basicserver.py /opt/app\n\nEXPOSE 5000/tcp\n\nCMD [\"/opt/venv/bin/python\", \"/opt/app/basicserver.py\"]\n";
        let ins = parse(text).unwrap();
        assert_eq!(ins.len(), 5);
        assert_eq!(ins[1].line, 3);
        assert_eq!(
            ins[1].kind,
            Kind::Run(CommandForm::Shell(
                "mkdir /opt/app &&     python3 -m venv /opt/venv &&     /opt/venv/bin/pip install flask".to_string()
            ))
        );
        assert_eq!(ins[2].line, 7);
        assert_eq!(
            ins[4].kind,
            Kind::Cmd(CommandForm::Exec(vec![
                "/opt/venv/bin/python".to_string(),
                "/opt/app/basicserver.py".to_string()
            ]))
        );
        assert_eq!(ins[3].text, "EXPOSE 5000/tcp");
    }

    #[test]
    fn comments_inside_continuations_and_escape_directive() {
        let text = "# escape=`\nFROM scratch\nRUN echo a `\n# a comment\n  b\n";
        let k = kinds(text);
        assert_eq!(
            k[1],
            Kind::Run(CommandForm::Shell("echo a   b".to_string()))
        );
    }

    #[test]
    fn unknown_and_malformed_instructions_name_their_line() {
        let e = parse("FROM scratch\n\nFROBNICATE x\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("unknown instruction"),
            "{e}"
        );
        let e = parse("FROM scratch\nCOPY onlyone\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse("FROM scratch\nENV =x\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse("RUN true\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("FROM"), "{e}");
        assert!(parse("").is_err());
    }

    #[test]
    fn env_label_copy_forms() {
        let k = kinds(
            "FROM a\nENV A=1 B=\"two words\"\nENV LEGACY some value\nLABEL x=y\nCOPY --chown=1:2 a b /dst/\nARG V=3\nEXPOSE 80 53/udp\n",
        );
        assert_eq!(
            k[1],
            Kind::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into())
            ])
        );
        assert_eq!(
            k[2],
            Kind::Env(vec![("LEGACY".into(), "some value".into())])
        );
        assert_eq!(k[3], Kind::Label(vec![("x".into(), "y".into())]));
        assert_eq!(
            k[4],
            Kind::Copy(CopyArgs {
                sources: vec!["a".into(), "b".into()],
                dest: "/dst/".into(),
                chown: Some("1:2".into()),
                from: None,
                chmod: None,
            })
        );
        assert_eq!(
            k[5],
            Kind::Arg {
                name: "V".into(),
                default: Some("3".into())
            }
        );
        assert_eq!(k[6], Kind::Expose(vec!["80".into(), "53/udp".into()]));
    }

    #[test]
    fn volume_shell_maintainer() {
        let k = kinds(
            "FROM a\nVOLUME /data /logs\nVOLUME [\"/x\"]\nSHELL [\"/bin/ash\", \"-e\", \"-c\"]\nMAINTAINER me\n",
        );
        assert_eq!(k[1], Kind::Volume(vec!["/data".into(), "/logs".into()]));
        assert_eq!(k[2], Kind::Volume(vec!["/x".into()]));
        let shell = vec!["/bin/ash".to_string(), "-e".into(), "-c".into()];
        assert_eq!(k[3], Kind::Shell(shell.clone()));
        assert_eq!(
            CommandForm::Shell("ls".into()).argv(Some(&shell)),
            ["/bin/ash", "-e", "-c", "ls"]
        );
        assert_eq!(k[4], Kind::Maintainer("me".into()));
        let e = parse("FROM a\nSHELL /bin/bash\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("JSON array"), "{e}");
        let e = parse("FROM a\nONBUILD RUN true\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not supported"), "{e}");
    }

    #[test]
    fn heredocs_keep_their_lines() {
        let text = "FROM a\nRUN <<EOF\nset -e\n# not a comment\n\necho hi > /x\nEOF\nRUN cat <<'END' > /etc/motd\nhello $USER\nEND\nCMD x\n";
        let ins = parse(text).unwrap();
        assert_eq!(ins.len(), 4);
        assert_eq!(
            ins[1].kind,
            Kind::Run(CommandForm::Shell(
                "set -e\n# not a comment\n\necho hi > /x".to_string()
            ))
        );
        assert_eq!(
            ins[2].kind,
            Kind::Run(CommandForm::Shell(
                "cat <<'END' > /etc/motd\nhello $USER\nEND".to_string()
            ))
        );
        assert_eq!(ins[3].line, 11);
        assert_eq!(heredoc_words("RUN a <<-A && b <<\"B\""), ["A", "B"]);
        assert!(heredoc_words("COPY <<EOF /x").is_empty());
        assert!(heredoc_words("RUN echo $((1<<2))").is_empty());
    }

    #[test]
    fn healthcheck_forms() {
        let k = kinds(
            "FROM a\nHEALTHCHECK --interval=1m30s --retries=3 CMD curl -f localhost\nHEALTHCHECK NONE\nHEALTHCHECK --timeout=500ms CMD [\"true\"]\n",
        );
        let Kind::Healthcheck(hc) = &k[1] else {
            panic!("{:?}", k[1])
        };
        assert_eq!(hc.test, ["CMD-SHELL", "curl -f localhost"]);
        assert_eq!((hc.interval, hc.retries), (90_000_000_000, 3));
        let Kind::Healthcheck(hc) = &k[2] else {
            panic!("{:?}", k[2])
        };
        assert_eq!(hc.test, ["NONE"]);
        let Kind::Healthcheck(hc) = &k[3] else {
            panic!("{:?}", k[3])
        };
        assert_eq!(hc.test, ["CMD", "true"]);
        assert_eq!(hc.timeout, 500_000_000);
        let e = parse("FROM a\nHEALTHCHECK --interval=soon CMD x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("--interval=soon"), "{e}");
        assert!(parse("FROM a\nHEALTHCHECK CMD\n").is_err());
    }

    #[test]
    fn expands_variables_like_docker() {
        let vars: BTreeMap<String, String> = [
            ("A".to_string(), "x".to_string()),
            ("E".to_string(), String::new()),
        ]
        .into();
        let ex = |w: &str| expand(w, &vars, 1).unwrap();
        assert_eq!(ex("$A/${A}y"), "x/xy");
        assert_eq!(ex("${NOPE:-def}"), "def");
        assert_eq!(ex("${E:-def}"), "def");
        assert_eq!(ex("${E-def}"), "");
        assert_eq!(ex("${A:+alt}"), "alt");
        assert_eq!(ex("'$A'"), "$A");
        assert_eq!(ex("\"$A b\""), "x b");
        assert_eq!(ex("\\$A"), "$A");
        assert_eq!(ex("cost$"), "cost$");
        assert!(
            expand("\"open", &vars, 4)
                .unwrap_err()
                .to_string()
                .contains("line 4")
        );
    }
}
