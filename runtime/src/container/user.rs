//! `--user`: turns `name`, `uid`, `name:group` or `uid:gid` into numbers,
//! reading the container's own /etc/passwd and /etc/group (not the host's),
//! as Docker does. Parsing is pure; the caller passes the files' text.

use super::security::Identity;

/// Resolves `spec` against passwd/group text. Empty means root.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Identity, String> {
    if spec.is_empty() {
        return Ok(Identity {
            uid: 0,
            gid: 0,
            groups: vec![],
        });
    }
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == user || f[2] == user));
    let (uid, mut gid, name) = match (&entry, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse()
                .map_err(|_| format!("bad uid in /etc/passwd for {user}"))?,
            f[3].parse()
                .map_err(|_| format!("bad gid in /etc/passwd for {user}"))?,
            Some(f[0].to_string()),
        ),
        (None, Ok(n)) => (n, n, None),
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {user}: no matching entries in the container's /etc/passwd"
            ));
        }
    };
    let groups_lines: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();
    if let Some(g) = grp {
        gid = match groups_lines.iter().find(|f| f[0] == g || f[2] == g) {
            Some(f) => f[2]
                .parse()
                .map_err(|_| format!("bad gid in /etc/group for {g}"))?,
            None => g.parse().map_err(|_| {
                format!(
                    "unable to find group {g}: no matching entries in the container's /etc/group"
                )
            })?,
        };
    }
    let mut groups = vec![gid];
    if let Some(name) = name {
        for f in &groups_lines {
            if f.len() >= 4
                && f[3].split(',').any(|m| m == name)
                && let Ok(g) = f[2].parse()
                && !groups.contains(&g)
            {
                groups.push(g);
            }
        }
    }
    Ok(Identity { uid, gid, groups })
}

#[cfg(test)]
mod tests {
    use super::*;
    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nweb:x:1000:1000::/home/web:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nweb:x:1000:\nwheel:x:10:web\nnogroup:x:65534:\n";

    #[test]
    fn names_and_numbers_resolve() {
        assert_eq!(
            resolve("", PASSWD, GROUP).unwrap(),
            Identity {
                uid: 0,
                gid: 0,
                groups: vec![]
            }
        );
        assert_eq!(
            resolve("web", PASSWD, GROUP).unwrap(),
            Identity {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 10]
            }
        );
        assert_eq!(
            resolve("1234", PASSWD, GROUP).unwrap(),
            Identity {
                uid: 1234,
                gid: 1234,
                groups: vec![1234]
            }
        );
        assert_eq!(resolve("nobody:wheel", PASSWD, GROUP).unwrap().gid, 10);
        assert_eq!(
            resolve("5:6", "", "").unwrap(),
            Identity {
                uid: 5,
                gid: 6,
                groups: vec![6]
            }
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(
            resolve("ghost", PASSWD, GROUP)
                .unwrap_err()
                .contains("ghost")
        );
        assert!(resolve("web:ghosts", PASSWD, GROUP).is_err());
    }
}
