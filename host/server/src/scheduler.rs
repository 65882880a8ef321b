//! The scheduler loop that `oshirase serve` runs beside the web server: it runs each
//! program when its schedule says, carries out reserved sends, closes surveys whose time
//! is up, queues what is due and sends inside the city's send window. Every decision is
//! `oshirase_core::schedule`'s, a pure function of the time; the loop only reads the
//! clock and the database.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use oshirase_core::channel::Channels;
use oshirase_core::evaluate::run_programs;
use oshirase_core::retry::RetryPolicy;
use oshirase_core::schedule::{MIN_PAUSE, POLL_INTERVAL, SendWindow, load, next_wake, record_fired};
use oshirase_core::service::Service;
use oshirase_core::time::day_in_japan;
use tokio_util::sync::CancellationToken;

/// Runs the programs when their schedules say, queues what is due, and sends inside the
/// send window, until stopped.
pub struct Scheduler {
    service: Service,
    channels: Channels,
    retry: RetryPolicy,
    window: SendWindow,
}

impl Scheduler {
    /// The scheduler of `service` as `config` says: LINE and e-mail, retries, the send
    /// window.
    pub fn new(service: Service, config: &oshirase_core::Config) -> Result<Scheduler> {
        Ok(Scheduler::with_channels(service, config.channels()?, config.retry.policy(), config.send_window))
    }

    /// A scheduler sending through `channels`, as the demo runs one beside its emulator.
    pub fn with_channels(service: Service, channels: Channels, retry: RetryPolicy, window: SendWindow) -> Scheduler {
        Scheduler { service, channels, retry, window }
    }

    /// Runs passes until `stop` is cancelled. A stop lets the LINE request in flight
    /// finish and its outcome be recorded, and starts nothing new: queued deliveries stay
    /// queued for the next start. A failed pass is logged and tried again later.
    pub async fn run(&self, stop: CancellationToken) {
        tracing::info!(
            window_start = %self.window.start,
            window_end = %self.window.end,
            mail = self.channels.mail.is_some(),
            "scheduler started"
        );
        // A mail server that cannot be reached is a setting to fix now, not at the first
        // fallback; deliveries still wait for it rather than fail.
        if let Some(mail) = &self.channels.mail
            && let Err(error) = mail.client.check_connection().await
        {
            tracing::warn!(
                error = %format!("{error:#}"),
                "the [mail] server cannot be reached; e-mail deliveries wait until it can"
            );
        }
        while !stop.is_cancelled() {
            let wake = match self.pass(Utc::now(), &stop).await {
                Ok(wake) => wake,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "scheduler pass failed; trying again later");
                    Utc::now() + POLL_INTERVAL
                }
            };
            let pause = (wake - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                // A send reserved in the console, for now or earlier than the next wake.
                () = self.service.wake_scheduler.notified() => {}
                () = stop.cancelled() => {}
            }
        }
        tracing::info!("scheduler stopped");
    }

    /// One pass at `now`: run the due programs (marking those seen for the first time),
    /// queue the due notices, send inside the window; returns when to look again.
    async fn pass(&self, now: DateTime<Utc>, stop: &CancellationToken) -> Result<DateTime<Utc>> {
        let today = day_in_japan(now);
        let plugins = self.service.plugins.clone();
        let reserved = oshirase_core::reservation::carry_out_due(&self.service.database, plugins, now, today).await?;
        if reserved > 0 {
            tracing::info!(reserved, "reserved sends carried out");
        }
        let closed =
            self.service.database.write(move |connection| oshirase_core::survey::close_due(connection, now)).await?;
        if closed > 0 {
            tracing::info!(closed, "surveys closed and their answers made anonymous");
        }
        let mut programs = self
            .service
            .database
            .write(move |connection| {
                let mut programs = load(connection)?;
                for program in programs.iter_mut().filter(|program| program.fired_through.is_none()) {
                    record_fired(connection, &program.program, now, false)?;
                    program.fired_through = Some(now);
                }
                Ok(programs)
            })
            .await?;
        // The programs due now run together, on one read of the snapshot (by default every
        // program's schedule fires at the same time of day). Versions are resolved when the
        // run starts; a program paused since the pass began is skipped.
        let due: Vec<String> =
            programs.iter().filter(|program| program.is_due(now)).map(|program| program.program.clone()).collect();
        if !due.is_empty() {
            if stop.is_cancelled() {
                return Ok(now);
            }
            run_programs(&self.service.database, self.service.plugins.clone(), Some(due.clone()), today).await?;
            let fired = due.clone();
            self.service
                .database
                .write(move |connection| {
                    fired.iter().try_for_each(|program| record_fired(connection, program, now, true))
                })
                .await?;
            for program in programs.iter_mut().filter(|program| due.contains(&program.program)) {
                program.fired_through = Some(now);
            }
        }
        let queued = self
            .service
            .database
            .write(move |connection| oshirase_core::outbox::enqueue_due(connection, today))
            .await?;
        if queued > 0 {
            tracing::info!(queued, "deliveries queued");
        }
        // Evaluation may have taken a while: the window is judged when sending starts.
        let sending_at = Utc::now();
        if self.window.contains(sending_at) && !stop.is_cancelled() {
            // The pass stops at the window's end as it does on shutdown.
            let pass = stop.child_token();
            let closes = (self.window.closing(sending_at) - sending_at).to_std().unwrap_or_default();
            let closer = tokio::spawn({
                let pass = pass.clone();
                async move {
                    tokio::time::sleep(closes).await;
                    pass.cancel();
                }
            });
            let sent = self.service.deliver(&self.channels, today, &self.retry, &pass).await;
            closer.abort();
            let sent = sent?;
            if sent.requests > 0 {
                tracing::info!(
                    sent = sent.sent,
                    retryable = sent.retryable,
                    failed = sent.failed,
                    waiting = sent.waiting,
                    "deliveries sent"
                );
            }
        }
        let (next_retry, next_reserved, next_closing) = self
            .service
            .database
            .read(|connection| {
                Ok((
                    oshirase_core::outbox::next_retry(connection)?,
                    oshirase_core::reservation::next_due(connection)?,
                    oshirase_core::survey::next_closing(connection)?,
                ))
            })
            .await
            .context("cannot read the next retry, reserved send and survey closing")?;
        let now = Utc::now();
        let wake = next_wake(now, &programs, &self.window, next_retry);
        // A reserved send is carried out, and a survey closed, at its time whether the
        // window is open or not.
        Ok([next_reserved, next_closing].into_iter().flatten().fold(wake, |wake, at| wake.min(at.max(now + MIN_PAUSE))))
    }
}
