//! Per-stream credit accounting. Pure bookkeeping, no I/O, so the rules are
//! easy to test: the receiver grants bytes, the sender spends them, and DATA
//! beyond the grant is a protocol error.

/// The receiving half of a stream's window.
#[derive(Debug)]
pub(crate) struct RecvWindow {
    window: u32,
    /// Bytes the peer may still send before it must wait for WINDOW.
    credit: u32,
    /// Bytes drained to the consumer but not yet granted back.
    unreturned: u32,
}

impl RecvWindow {
    pub fn new(window: u32) -> Self {
        RecvWindow {
            window,
            credit: window,
            unreturned: 0,
        }
    }

    /// Spends credit for an arriving DATA frame; `Err(credit)` when the peer
    /// sent more than it was granted.
    pub fn on_data(&mut self, len: usize) -> Result<(), u32> {
        match u32::try_from(len) {
            Ok(len) if len <= self.credit => {
                self.credit -= len;
                Ok(())
            }
            _ => Err(self.credit),
        }
    }

    /// The consumer has drained `len` bytes (written them to its socket).
    pub fn consumed(&mut self, len: u32) {
        self.unreturned += len;
    }

    /// A WINDOW increment to send now, if one is due. Credit goes back in
    /// batches of a quarter window, so request/response traffic does not cost
    /// a WINDOW per message. This cannot stall a sender: while less than a
    /// quarter is unreturned, the sender still holds three quarters.
    pub fn take_update(&mut self) -> Option<u32> {
        let due = self.unreturned >= self.window / 4;
        due.then(|| {
            let inc = std::mem::take(&mut self.unreturned);
            self.credit += inc;
            inc
        })
    }
}

/// The sending half of a stream's window.
#[derive(Debug)]
pub(crate) struct SendCredit {
    credit: u64,
}

impl SendCredit {
    pub fn new(initial: u32) -> Self {
        SendCredit {
            credit: initial as u64,
        }
    }

    pub fn available(&self) -> usize {
        self.credit as usize
    }

    /// Adds a WINDOW increment; `Err` if the total would exceed what any
    /// honest peer can grant (a window is a u32).
    pub fn grant(&mut self, increment: u32) -> Result<(), ()> {
        let next = self.credit + increment as u64;
        if next > u32::MAX as u64 {
            return Err(());
        }
        self.credit = next;
        Ok(())
    }

    /// Spends up to `max` bytes of credit and returns how many were spent.
    pub fn take(&mut self, max: usize) -> usize {
        let n = (self.credit as usize).min(max);
        self.credit -= n as u64;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_beyond_the_grant_is_refused() {
        let mut w = RecvWindow::new(100);
        assert!(w.on_data(60).is_ok());
        assert_eq!(w.on_data(41), Err(40));
        assert!(w.on_data(40).is_ok());
        assert_eq!(w.on_data(1), Err(0));
    }

    #[test]
    fn credit_returns_in_quarter_batches() {
        let mut w = RecvWindow::new(100);
        w.on_data(100).unwrap();
        w.consumed(10);
        assert_eq!(w.take_update(), None);
        w.consumed(15);
        assert_eq!(w.take_update(), Some(25));
        w.consumed(5);
        assert_eq!(w.take_update(), None);
        // The peer may now send exactly what was returned.
        assert!(w.on_data(25).is_ok());
        assert!(w.on_data(1).is_err());
        // Draining everything always returns enough to unblock the sender.
        w.consumed(95);
        assert_eq!(w.take_update(), Some(100));
    }

    #[test]
    fn send_credit_spends_and_grants() {
        let mut c = SendCredit::new(10);
        assert_eq!(c.take(4), 4);
        assert_eq!(c.take(100), 6);
        assert_eq!(c.take(1), 0);
        c.grant(7).unwrap();
        assert_eq!(c.available(), 7);
        assert!(c.grant(u32::MAX).is_err());
    }
}
