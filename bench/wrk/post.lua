-- POST one recorded AdmissionReview on every request, and print wrk's figures as JSON.
--
--   wrk -t1 -c16 -d10s -s bench/wrk/post.lua https://127.0.0.1:18443/validate \
--       -- bench/reviews/pod-1c.json

function init(args)
  local file = assert(io.open(args[1], "rb"), "usage: -- REVIEW.json")
  wrk.method = "POST"
  wrk.body = file:read("*a")
  wrk.headers["Content-Type"] = "application/json"
  file:close()
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "p50": %d, "p99": %d, "max": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(99), latency.max))
end
