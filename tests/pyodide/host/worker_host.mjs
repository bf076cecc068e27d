// The Worker as workerd would run it, in Node: the Pyodide that wrangler.toml's runtime flag
// selects (314.0.4 for python_workers_20260610), the deployable bundle (build/worker/ and
// python_modules/), wrangler's platform proxy for real local D1, R2 and Queue bindings, and
// workerd's top-level randomness rule. tests/pyodide/runner.py starts it.
//
// Usage: node worker_host.mjs CONFIG_JSON. It prints one JSON line on stdout when ready
// ({worker, control, python, boot_seconds, import_seconds, modules}) or exits non-zero with
// the error on stderr.
// The worker port serves HTTP through `Default.fetch`. The control port serves the
// contract-test bridge's binding routes (tests/cf_bridge/worker.js, on these same bindings)
// plus `/__host/*`: `POST scheduled` runs the cron handler, `GET requests` lists per-event
// timings and first-time imports, `GET loaded` the loaded module files, `GET queue` what the
// Worker sent to its queues, `POST queue` runs the queue consumer on a batch of messages.
// `POST scheduled` takes an optional {env} of vars added to that event's env only.

import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadPyodide } from "pyodide";
import { getPlatformProxy } from "wrangler";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const config = JSON.parse(process.argv[2]);
const log = (...args) => console.error("[worker-host]", ...args);

// --- randomness ---------------------------------------------------------------------------
// Pyodide reads randomness through node:crypto's randomFillSync. From the Worker's top level
// until its first request only counted grants (set by _cloudflare.allow_entropy) get through,
// as "bad" constant bytes, as workerd hands them out; any other read aborts, as in workerd.
const entropyGuard = { open: false, allowed: 0 };
const realRandomFill = crypto.randomFillSync;
let guardActive = false;
crypto.randomFillSync = function randomFillSync(view, ...rest) {
  if (!guardActive || entropyGuard.open) return realRandomFill(view, ...rest);
  if (entropyGuard.allowed > 0) {
    entropyGuard.allowed -= 1;
    new Uint8Array(view.buffer, view.byteOffset, view.byteLength).fill(43);
    return view;
  }
  throw new Error("Disallowed operation called within global scope: read of randomness");
};

// --- bindings -----------------------------------------------------------------------------
// The SDK's env wrapper recognises bindings by their runtime class name; the platform proxy's
// stubs answer to any property, so each binding becomes an instance of a class with the name
// workerd's binding object has, whose property reads go to the stub. Introspection (which
// Pyodide's conversions do) stays local: the stubs answer it with synchronous round trips.
function asRuntimeBinding(binding, className) {
  const Binding = { [className]: class {} }[className];
  return new Proxy(new Binding(), {
    get: (_, property) => (property === "constructor" ? Binding : binding[property]),
  });
}

const sent = [];
function recordingQueue(queue, name) {
  return new Proxy(queue, {
    get(target, property) {
      if (property !== "send") return target[property];
      return async (body, options) => {
        const record = { body: JSON.parse(JSON.stringify(body)), options: options ?? null };
        sent.push(name ? { ...record, queue: name } : record);
        return target.send(body, options);
      };
    },
  });
}

// What workerd hands a queue consumer: a MessageBatch of Messages, each acked or retried
// (with options) by the handler; the calls are recorded and answered to the caller.
class Message {
  constructor(id, body, attempts, outcomes) {
    this.id = id;
    this.body = body;
    this.attempts = attempts;
    this.timestamp = new Date();
    this.outcomes = outcomes;
  }
  ack() {
    this.outcomes.push({ id: this.id, ack: true });
  }
  retry(options) {
    this.outcomes.push({ id: this.id, retry: options ?? {} });
  }
}
class MessageBatch {
  constructor(queue, messages) {
    this.queue = queue;
    this.messages = messages;
  }
  ackAll() {
    for (const message of this.messages) message.ack();
  }
  retryAll(options) {
    for (const message of this.messages) message.retry(options);
  }
}

const proxy = await getPlatformProxy({
  configPath: config.wranglerConfig,
  persist: { path: config.persistDir },
});
const rawEnv = proxy.env;
const env = {
  ...rawEnv,
  ...config.secrets,
  DB: asRuntimeBinding(rawEnv.DB, "D1Database"),
  BUCKET: asRuntimeBinding(rawEnv.BUCKET, "R2Bucket"),
  JOBS: asRuntimeBinding(recordingQueue(rawEnv.JOBS), "WorkerQueue"),
  WEBHOOKS: asRuntimeBinding(recordingQueue(rawEnv.WEBHOOKS, "avatar-webhooks"), "WorkerQueue"),
};
const bridge = (await import(pathToFileURL(config.bridgeWorker).href)).default;
// The bridge stores request bodies as streams, which workerd sizes from the request; through
// the proxy a stream has no known length, so the bridge's R2 puts get the bytes instead.
const bridgeEnv = {
  ...rawEnv,
  BUCKET: new Proxy(rawEnv.BUCKET, {
    get(target, property) {
      if (property !== "put") return target[property];
      return async (key, value, options) => {
        const stream = value instanceof ReadableStream;
        return target.put(key, stream ? await new Response(value).arrayBuffer() : value, options);
      };
    },
  }),
};

// --- Pyodide ------------------------------------------------------------------------------
function copyTree(pyodide, source, target) {
  pyodide.FS.mkdirTree(target);
  for (const entry of fs.readdirSync(source, { withFileTypes: true })) {
    const from = path.join(source, entry.name);
    const to = `${target}/${entry.name}`;
    if (entry.isDirectory()) copyTree(pyodide, from, to);
    else pyodide.FS.writeFile(to, fs.readFileSync(from));
  }
}

const started = performance.now();
const pyodide = await loadPyodide({
  // workerd's settings: home in /session, and a fixed hash seed (no entropy at start-up).
  env: { HOME: "/session", PYTHONHASHSEED: "111" },
  stdout: (line) => console.error(line),
  stderr: (line) => console.error(line),
});
if (pyodide.version !== config.pyodideVersion) {
  const wanted = config.pyodideVersion;
  throw new Error(`wrangler.toml deploys to Pyodide ${wanted}, npm has ${pyodide.version}`);
}
const bootSeconds = (performance.now() - started) / 1000;

const sitePackages = pyodide.runPython("import site; site.getsitepackages()[0]");
copyTree(pyodide, path.join(HERE, "_cloudflare"), `${sitePackages}/_cloudflare`);
const hostModule = fs.readFileSync(path.join(HERE, "worker_host.py"));
pyodide.FS.writeFile(`${sitePackages}/worker_host.py`, hostModule);
pyodide.registerJsModule("_entropy_guard", entropyGuard);
pyodide.registerJsModule("_cloudflare_compat_flags", config.compatFlags);
pyodide.registerJsModule("_pyodide_entrypoint_helper", {
  doAnImport: (name) => import(name),
  cloudflareWorkersModule: { env, waitUntil: () => {} },
  cloudflareSocketsModule: {},
  workerEntrypoint: class WorkerEntrypoint {},
  patchWaitUntil: () => {},
});

// The bundle, where workerd mounts it: the Worker's modules in /session/metadata, the vendored
// packages in /session/metadata/python_modules (before site-packages, .pth files processed).
copyTree(pyodide, config.workerDir, "/session/metadata");
copyTree(pyodide, config.pythonModules, "/session/metadata/python_modules");
guardActive = true;
pyodide.runPython(`
from _cloudflare import rules
rules.before_top_level()
import site, sys
sys.path.insert(0, "/session/metadata")
modules = "/session/metadata/python_modules"
sys.path.insert(next(i for i, p in enumerate(sys.path) if "site-packages" in p), modules)
site.addsitedir(modules)
`);

const host = pyodide.pyimport("worker_host");
const imported = host.import_main(config.mainModule).toJs({ dict_converter: Object.fromEntries });

// --- serving ------------------------------------------------------------------------------
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade"]);
const ctx = { waitUntil: () => {}, passThroughOnException: () => {} };

// An incoming request as workerd hands it to a Worker: a body only when one was sent (a
// length above zero, or chunked), streamed unless `buffered`.
async function toRequest(incoming, buffered = false) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (HOP_BY_HOP.has(name)) continue;
    for (const item of [value].flat()) headers.append(name, item);
  }
  const length = Number(incoming.headers["content-length"] ?? 0);
  const hasBody = length > 0 || "transfer-encoding" in incoming.headers;
  let body;
  if (hasBody) body = buffered ? Buffer.concat(await incoming.toArray()) : Readable.toWeb(incoming);
  return new Request(`https://${incoming.headers.host}${incoming.url}`, {
    method: incoming.method,
    headers,
    body,
    duplex: "half",
  });
}

// The body is passed on chunk by chunk as the Worker writes it, as workerd does, so a
// streamed response (Server-Sent Events) reaches the client while the Worker still runs.
async function send(response, outgoing) {
  const headers = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  outgoing.writeHead(response.status, headers);
  if (response.body !== null) {
    for await (const chunk of response.body) outgoing.write(chunk);
  }
  outgoing.end();
}

function failed(outgoing, error) {
  log(error?.stack ?? String(error));
  outgoing.writeHead(500, { "content-type": "text/plain" });
  outgoing.end(String(error?.message ?? error));
}

const worker = http.createServer(async (incoming, outgoing) => {
  try {
    await send(await host.fetch(await toRequest(incoming), env, ctx), outgoing);
  } catch (error) {
    failed(outgoing, error);
  }
});

const toPlain = (value) => value.toJs({ dict_converter: Object.fromEntries });
const control = http.createServer(async (incoming, outgoing) => {
  try {
    const route = `${incoming.method} ${incoming.url}`;
    if (route === "POST /__host/scheduled") {
      // An optional body {env: {NAME: value}} adds vars to this event's env only.
      const given = Buffer.concat(await incoming.toArray()).toString();
      const extra = given ? (JSON.parse(given).env ?? {}) : {};
      const controller = {
        cron: config.cron,
        scheduledTime: Date.now(),
        type: "scheduled",
        noRetry() {},
      };
      await host.scheduled(controller, { ...env, ...extra }, ctx);
      await send(Response.json({ result: null }), outgoing);
    } else if (route === "GET /__host/requests") {
      await send(Response.json({ result: toPlain(host.requests()) }), outgoing);
    } else if (route === "GET /__host/loaded") {
      await send(Response.json({ result: toPlain(host.loaded_files()) }), outgoing);
    } else if (route === "POST /__host/queue") {
      // {queue, messages: [{id, body, attempts}]} -> Default.queue(batch, env, ctx)
      const given = JSON.parse(Buffer.concat(await incoming.toArray()).toString());
      const outcomes = [];
      const messages = given.messages.map(
        (m) => new Message(m.id, m.body, m.attempts ?? 1, outcomes),
      );
      await host.queue(new MessageBatch(given.queue, messages), env, ctx);
      await send(Response.json({ result: outcomes }), outgoing);
    } else if (route === "GET /__host/queue") {
      await send(Response.json({ result: sent }), outgoing);
    } else {
      await send(await bridge.fetch(await toRequest(incoming, true), bridgeEnv), outgoing);
    }
  } catch (error) {
    failed(outgoing, error);
  }
});

const listen = (server) =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
const [workerPort, controlPort] = [await listen(worker), await listen(control)];
process.stdout.write(
  `${JSON.stringify({
    worker: `http://127.0.0.1:${workerPort}`,
    control: `http://127.0.0.1:${controlPort}`,
    boot_seconds: bootSeconds,
    ...imported,
  })}\n`,
);

async function stop() {
  worker.close();
  control.close();
  await proxy.dispose();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
