//! One stream the server opened on a link: dial the channel's target and
//! relay, or refuse with the reason (also reported as an [`Event::Error`]).
//!
//! [`Event::Error`]: crate::Event::Error

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;
use uptun_protocol::IncomingStream;

use super::Channels;
use crate::idle_exit::Activity;
use crate::report::Reporter;

/// What serving a stream needs, shared by every link.
#[derive(Debug, Clone)]
pub(super) struct Serving {
    pub targets: Channels,
    /// Counts open streams for `--exit-when-idle`, when it is set.
    pub activity: Option<Arc<Activity>>,
    pub reporter: Arc<Reporter>,
    /// How long dialing a target may take.
    pub timeout: Duration,
}

impl Serving {
    /// Serves `stream` in a task of its own.
    pub fn spawn(&self, stream: IncomingStream) {
        // No span per stream: 10,000 of them would cost ~3 MiB. The lines
        // below name the stream themselves.
        let busy = self.activity.as_ref().map(Activity::begin);
        let serving = self.clone();
        tokio::spawn(async move {
            serving.serve(stream).await;
            drop(busy);
        });
    }

    async fn serve(&self, incoming: IncomingStream) {
        let Some(channel) = self.targets.get(&incoming.channel) else {
            let reason = format!("this agent does not serve channel \"{}\"", incoming.channel);
            self.refuse(incoming, reason);
            return;
        };
        // Boxed: dialing is short, and its state need not stay in the task
        // for as long as the stream lives.
        let term = incoming.term.as_deref();
        let connect = channel.connect(&incoming.peer, term, self.timeout);
        let connected = match Box::pin(connect).await {
            Ok(connected) => connected,
            Err(reason) => return self.refuse(incoming, reason),
        };
        let id = incoming.id();
        let Ok(stream) = incoming.accept().await else {
            return;
        };
        match connected(stream).await {
            Ok(stats) => tracing::debug!(
                stream = id,
                sent = stats.sent,
                received = stats.received,
                "stream done"
            ),
            Err(err) => tracing::debug!(stream = id, %err, "stream ended early"),
        }
    }

    fn refuse(&self, incoming: IncomingStream, reason: String) {
        warn!(channel = %incoming.channel, user = %incoming.peer, %reason, "stream refused");
        let channel = incoming.channel.clone();
        incoming.refuse(&reason);
        self.reporter.error(Some(&channel), reason);
    }
}
