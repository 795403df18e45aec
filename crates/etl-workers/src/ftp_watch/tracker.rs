//! The change detector: compares successive listings, applies `settle`, and
//! decides which files to announce as `new` or `mod`. Pure: no I/O, no clock.
//!
//! Semantics of `settle = N`: a file whose (size, modification time) differs from
//! what was last announced becomes *pending*; it is announced once N further
//! polls have seen exactly the same size and time. `settle: 0` announces on first
//! sight; the default `1` announces on the next poll if nothing changed, so a file
//! still being uploaded (growing) is announced only after it stops changing for a
//! whole interval. A file that disappears is forgotten: if it comes back it is
//! `new` again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What identifies a version of a file: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Size in bytes.
    pub sz: u64,
    /// Modification time, seconds since the Unix epoch (UTC), when known.
    pub dt: Option<u64>,
}

/// One file of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Path relative to the watched directory (the event's `name`).
    pub name: String,
    /// Full remote path.
    pub path: String,
    /// Its current size and time.
    pub stamp: Stamp,
}

/// The kind of change announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Never announced before (event name `new`).
    New,
    /// Announced before with another size or time (event name `mod`).
    Modified,
}

impl Change {
    /// The event name: `new` or `mod`.
    pub fn event_name(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Modified => "mod",
        }
    }
}

/// A file to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// `new` or `mod`.
    pub change: Change,
    /// The file.
    pub file: Observed,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    stamp: Stamp,
    unchanged_polls: u32,
}

/// Announced files plus files waiting to settle.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    settle: u32,
    announced: BTreeMap<String, Stamp>,
    pending: BTreeMap<String, Pending>,
}

impl Tracker {
    /// A tracker that knows nothing yet.
    pub fn new(settle: u32) -> Self {
        Tracker {
            settle,
            ..Tracker::default()
        }
    }

    /// A tracker that starts from a previously announced listing (loaded state).
    pub fn with_announced(settle: u32, announced: BTreeMap<String, Stamp>) -> Self {
        Tracker {
            settle,
            announced,
            pending: BTreeMap::new(),
        }
    }

    /// Takes `listing` as already announced (`existing: ignore` on a first start).
    pub fn accept_all(&mut self, listing: &[Observed]) {
        self.announced = listing.iter().map(|f| (f.name.clone(), f.stamp)).collect();
        self.pending.clear();
    }

    /// What has been announced, by name.
    pub fn announced(&self) -> &BTreeMap<String, Stamp> {
        &self.announced
    }

    /// Names waiting to settle.
    pub fn pending(&self) -> impl Iterator<Item = &str> {
        self.pending.keys().map(String::as_str)
    }

    /// Feeds one poll's complete listing; returns what to announce now (sorted by
    /// name) and records it as announced.
    pub fn observe(&mut self, listing: &[Observed]) -> Vec<Announcement> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for file in listing {
            seen.insert(file.name.as_str());
            if self.announced.get(&file.name) == Some(&file.stamp) {
                self.pending.remove(&file.name);
                continue;
            }
            let unchanged_polls = match self.pending.get_mut(&file.name) {
                Some(pending) if pending.stamp == file.stamp => {
                    pending.unchanged_polls += 1;
                    pending.unchanged_polls
                }
                _ => {
                    self.pending.insert(
                        file.name.clone(),
                        Pending {
                            stamp: file.stamp,
                            unchanged_polls: 0,
                        },
                    );
                    0
                }
            };
            if unchanged_polls >= self.settle {
                self.pending.remove(&file.name);
                let previous = self.announced.insert(file.name.clone(), file.stamp);
                out.push(Announcement {
                    change: if previous.is_some() {
                        Change::Modified
                    } else {
                        Change::New
                    },
                    file: file.clone(),
                });
            }
        }
        self.announced
            .retain(|name, _| seen.contains(name.as_str()));
        self.pending.retain(|name, _| seen.contains(name.as_str()));
        out.sort_by(|a, b| a.file.name.cmp(&b.file.name));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, sz: u64, dt: u64) -> Observed {
        Observed {
            name: name.to_owned(),
            path: format!("/{name}"),
            stamp: Stamp { sz, dt: Some(dt) },
        }
    }

    fn names(announcements: &[Announcement]) -> Vec<(&'static str, &str)> {
        announcements
            .iter()
            .map(|a| (a.change.event_name(), a.file.name.as_str()))
            .collect()
    }

    #[test]
    fn settle_zero_announces_on_sight() {
        let mut t = Tracker::new(0);
        assert_eq!(names(&t.observe(&[file("a", 1, 1)])), [("new", "a")]);
        assert!(t.observe(&[file("a", 1, 1)]).is_empty());
        assert_eq!(names(&t.observe(&[file("a", 2, 2)])), [("mod", "a")]);
    }

    #[test]
    fn settle_one_waits_one_unchanged_poll() {
        let mut t = Tracker::new(1);
        assert!(t.observe(&[file("a", 1, 1)]).is_empty());
        assert_eq!(names(&t.observe(&[file("a", 1, 1)])), [("new", "a")]);
        assert!(t.observe(&[file("a", 1, 1)]).is_empty());
    }

    #[test]
    fn growing_file_is_announced_once_it_stops_changing() {
        let mut t = Tracker::new(2);
        for size in 1..5 {
            assert!(t.observe(&[file("a", size, size)]).is_empty());
        }
        assert!(t.observe(&[file("a", 4, 4)]).is_empty());
        assert_eq!(names(&t.observe(&[file("a", 4, 4)])), [("new", "a")]);
        // A modification settles the same way and is `mod`.
        assert!(t.observe(&[file("a", 9, 9)]).is_empty());
        assert!(t.observe(&[file("a", 9, 9)]).is_empty());
        assert_eq!(names(&t.observe(&[file("a", 9, 9)])), [("mod", "a")]);
    }

    #[test]
    fn change_back_to_announced_version_cancels_pending() {
        let mut t = Tracker::new(1);
        t.accept_all(&[file("a", 1, 1)]);
        assert!(t.observe(&[file("a", 2, 2)]).is_empty());
        assert!(t.observe(&[file("a", 1, 1)]).is_empty());
        assert_eq!(t.pending().count(), 0);
    }

    #[test]
    fn existing_ignored_then_new_files_only() {
        let mut t = Tracker::new(0);
        t.accept_all(&[file("old", 1, 1)]);
        assert_eq!(
            names(&t.observe(&[file("old", 1, 1), file("b", 1, 1), file("a", 1, 1)])),
            [("new", "a"), ("new", "b")]
        );
    }

    #[test]
    fn deleted_file_is_new_again() {
        let mut t = Tracker::new(0);
        t.observe(&[file("a", 1, 1)]);
        assert!(t.observe(&[]).is_empty());
        assert!(t.announced().is_empty());
        assert_eq!(names(&t.observe(&[file("a", 1, 1)])), [("new", "a")]);
    }

    #[test]
    fn restart_from_state_neither_misses_nor_repeats() {
        let mut before = Tracker::new(0);
        before.observe(&[file("a", 1, 1)]);
        let mut after = Tracker::with_announced(0, before.announced().clone());
        assert_eq!(
            names(&after.observe(&[file("a", 1, 1), file("b", 2, 2)])),
            [("new", "b")]
        );
    }
}
