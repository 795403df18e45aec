//! Name filters: suffixes and simple globs (`*` any run, `?` one character) on file names,
//! and the `exclude` list on folder and file names or relative paths. Pure.

/// Which file names are watched. Empty lists accept everything; when both are
/// given, a name must match a suffix *and* a glob.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter {
    suffixes: Vec<String>,
    globs: Vec<String>,
}

impl NameFilter {
    /// A filter from suffixes and glob patterns (case-sensitive).
    pub fn new(suffixes: Vec<String>, globs: Vec<String>) -> Self {
        NameFilter { suffixes, globs }
    }

    /// Whether `name` (a file name, no slash) passes.
    pub fn matches(&self, name: &str) -> bool {
        (self.suffixes.is_empty() || self.suffixes.iter().any(|s| name.ends_with(s.as_str())))
            && (self.globs.is_empty() || self.globs.iter().any(|g| glob_match(g, name)))
    }
}

/// Folders and files a recursive watch leaves out: a pattern without `/` matches a
/// folder's or file's name at any depth, one with `/` its path relative to the watched
/// folder. An excluded folder is not listed at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclude {
    patterns: Vec<String>,
}

impl Exclude {
    /// The list as configured.
    pub fn new(patterns: Vec<String>) -> Self {
        Exclude { patterns }
    }

    /// Whether the entry at `relative` (path relative to the watched folder) is left out.
    pub fn excludes(&self, relative: &str) -> bool {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        self.patterns.iter().any(|pattern| {
            if pattern.contains('/') {
                glob_match(pattern.trim_matches('/'), relative)
            } else {
                glob_match(pattern, name)
            }
        })
    }
}

/// Matches `name` against `pattern` with `*` (any run, also empty) and `?` (one
/// character). Iterative with one backtrack point: linear in practice.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((star_p, star_n)) => {
                    p = star_p + 1;
                    n = star_n + 1;
                    star = Some((star_p, star_n + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.csv", "a.csv"));
        assert!(glob_match("*.csv", ".csv"));
        assert!(!glob_match("*.csv", "a.csv.tmp"));
        assert!(glob_match("day-??.csv", "day-01.csv"));
        assert!(!glob_match("day-??.csv", "day-1.csv"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("été*", "été.csv"));
    }

    #[test]
    fn excludes_by_name_or_relative_path() {
        let e = Exclude::new(vec!["tmp".into(), "*.part".into(), "2019/*".into()]);
        assert!(e.excludes("tmp"));
        assert!(e.excludes("2023/12/tmp"));
        assert!(e.excludes("2023/a.part"));
        assert!(e.excludes("2019/01"));
        assert!(!e.excludes("2019"));
        assert!(!e.excludes("2023/01/a.csv"));
        assert!(!Exclude::default().excludes("anything"));
    }

    #[test]
    fn suffix_and_glob_combine() {
        let f = NameFilter::new(vec![".csv".into()], vec!["2023*".into()]);
        assert!(f.matches("20230414.csv"));
        assert!(!f.matches("20230414.txt"));
        assert!(!f.matches("x.csv"));
        assert!(NameFilter::default().matches("anything"));
        let f = NameFilter::new(vec![".csv".into(), ".CSV".into()], vec![]);
        assert!(f.matches("A.CSV"));
    }
}
