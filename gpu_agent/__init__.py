"""The pull-based GPU agent (docs/ARCHITECTURE.md, agent flow).

It pulls job ids from a Cloudflare Queue (or the local edge's emulation of it), claims
each job from the edge, downloads the inputs through signed URLs, runs one engine job at a
time while heartbeating progress, uploads the MP4 through a signed URL and reports the
result. The agent holds no state another agent needs, so scaling out is starting more
agents against the same queue.

Modules, one job each: `settings` (environment -> `AgentSettings`), `queue_client`
(Cloudflare pull/ack), `edge_client` (the edge's /agent API), `transfers` (streaming
signed-URL GET/PUT), `retry` (the one backoff-and-jitter policy every call above uses),
`progress` (progress mapping and the heartbeat thread), `probes` (media checks),
`delivery` (one queue message: claim, ack or hand back), `claimed_job` (one claimed job
and its one final report), `pipeline` (download, probe, engine, verify, upload),
`outcome` (how a message ended), `job_log` (job fields on every log record), `agent`
(the pull loop and the shutdown grace), `cli` (`avatar-agent`, the only place that
reads the process environment). Logs are `contracts.logs`, shared with the edge.
"""
