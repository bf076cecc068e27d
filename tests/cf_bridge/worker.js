// The contract tests' window onto real Cloudflare bindings: `wrangler dev --local` runs this
// Worker in workerd with local D1, R2 and Queues, and each route below performs exactly one
// binding call for the Python proxies in proxies.py. Nothing here interprets the results:
// whatever D1, R2 or Queues answer (or throw) goes back to Python as it is.

const received = []; // messages this Worker consumed from the queue, oldest first

function objectInfo(object) {
  return {
    key: object.key,
    size: object.size,
    etag: object.etag,
    uploaded: object.uploaded.toISOString(),
    httpMetadata: object.httpMetadata ?? {},
  };
}

const routes = {
  "GET /health": async () => Response.json({ ok: true }),

  "POST /d1": async (request, env) => {
    const { sql, params, method } = await request.json();
    const statement = env.DB.prepare(sql).bind(...params);
    return Response.json({ result: await statement[method]() });
  },

  "PUT /r2/object": async (request, env, url) => {
    const options = JSON.parse(request.headers.get("x-r2-options") ?? "{}");
    const object = await env.BUCKET.put(url.searchParams.get("key"), request.body, options);
    return Response.json({ result: objectInfo(object) });
  },

  "POST /r2/head": async (request, env) => {
    const { key } = await request.json();
    const object = await env.BUCKET.head(key);
    return Response.json({ result: object === null ? null : objectInfo(object) });
  },

  "POST /r2/get": async (request, env) => {
    const { key, options } = await request.json();
    const object = await env.BUCKET.get(key, options);
    if (object === null) return Response.json({ result: null }, { status: 404 });
    return new Response(object.body, {
      headers: { "x-r2-object": JSON.stringify(objectInfo(object)) },
    });
  },

  "POST /r2/delete": async (request, env) => {
    const { keys } = await request.json();
    await env.BUCKET.delete(keys);
    return Response.json({ result: null });
  },

  "POST /r2/list": async (request, env) => {
    const { options } = await request.json();
    const listed = await env.BUCKET.list(options);
    return Response.json({
      result: {
        objects: listed.objects.map(objectInfo),
        truncated: listed.truncated,
        cursor: listed.truncated ? listed.cursor : undefined,
        delimitedPrefixes: listed.delimitedPrefixes,
      },
    });
  },

  "POST /queue/send": async (request, env) => {
    const { body, options } = await request.json();
    await env.JOBS.send(body, options);
    return Response.json({ result: null });
  },

  "GET /queue/received": async () => Response.json({ result: received }),
};

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const route = routes[`${request.method} ${url.pathname}`];
    if (route === undefined) return Response.json({ error: "no such route" }, { status: 404 });
    try {
      return await route(request, env, url);
    } catch (error) {
      return Response.json({ error: String(error?.message ?? error) }, { status: 500 });
    }
  },

  async queue(batch) {
    for (const message of batch.messages) {
      received.push({
        id: message.id,
        body: message.body,
        attempts: message.attempts,
        timestamp_ms: message.timestamp.getTime(),
      });
      message.ack();
    }
  },
};
