//! A session's terminal size, as tmux's `window-size smallest`: every
//! attachment that sent a RESIZE votes with its size, and the session takes
//! the smallest width and the smallest height among the votes, so every
//! writer sees the whole screen. An attachment that sends no RESIZE (a
//! read-only `attach`, a `connect` pipe) has no vote and never shrinks it.

use std::collections::HashMap;

use uptun_protocol::TermSize;

#[derive(Debug)]
pub(super) struct Sizes {
    votes: HashMap<u64, TermSize>,
    current: TermSize,
}

impl Sizes {
    pub fn new() -> Sizes {
        Sizes {
            votes: HashMap::new(),
            current: TermSize::DEFAULT,
        }
    }

    /// The size the session has now.
    #[cfg(test)]
    pub fn current(&self) -> TermSize {
        self.current
    }

    /// Attachment `id` sent `size`. Returns the session's new size if it
    /// changed. A size with no cells is no terminal's: ignored.
    pub fn vote(&mut self, id: u64, size: TermSize) -> Option<TermSize> {
        if size.cols == 0 || size.rows == 0 {
            return None;
        }
        self.votes.insert(id, size);
        self.settle()
    }

    /// Attachment `id` left. With no votes left, the size stays as it
    /// was: nobody is there to want another, and a redraw would be wasted.
    pub fn withdraw(&mut self, id: u64) -> Option<TermSize> {
        self.votes.remove(&id)?;
        self.settle()
    }

    fn settle(&mut self) -> Option<TermSize> {
        let smallest = self.votes.values().copied().reduce(|a, b| TermSize {
            cols: a.cols.min(b.cols),
            rows: a.rows.min(b.rows),
        })?;
        (smallest != self.current).then(|| {
            self.current = smallest;
            smallest
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(cols: u16, rows: u16) -> TermSize {
        TermSize { cols, rows }
    }

    #[test]
    fn the_smallest_writer_wins_in_each_dimension() {
        let mut sizes = Sizes::new();
        assert_eq!(sizes.current(), TermSize::DEFAULT);
        assert_eq!(sizes.vote(1, size(200, 50)), Some(size(200, 50)));
        assert_eq!(sizes.vote(2, size(120, 60)), Some(size(120, 50)));
        // The same size again changes nothing.
        assert_eq!(sizes.vote(2, size(120, 60)), None);
        assert_eq!(sizes.vote(3, size(300, 70)), None);
        assert_eq!(sizes.current(), size(120, 50));
    }

    #[test]
    fn leaving_and_resizing_let_it_grow_back() {
        let mut sizes = Sizes::new();
        sizes.vote(1, size(200, 50));
        sizes.vote(2, size(100, 30));
        assert_eq!(sizes.withdraw(2), Some(size(200, 50)));
        assert_eq!(sizes.vote(1, size(150, 40)), Some(size(150, 40)));
        // An attachment that never voted leaves without a change.
        assert_eq!(sizes.withdraw(7), None);
        // The last one leaving keeps the size it had.
        assert_eq!(sizes.withdraw(1), None);
        assert_eq!(sizes.current(), size(150, 40));
    }

    #[test]
    fn a_size_without_cells_is_ignored() {
        let mut sizes = Sizes::new();
        assert_eq!(sizes.vote(1, size(0, 40)), None);
        assert_eq!(sizes.vote(1, size(100, 0)), None);
        assert_eq!(sizes.current(), TermSize::DEFAULT);
    }
}
