// The playground: the public API from a browser, with nothing but this origin and the blob
// store's signed URLs (docs/API.md#playground). The key stays in sessionStorage and travels
// only in the Authorization header, so the live status is read from the SSE stream with
// fetch() and a stream reader: EventSource cannot send that header.

const KEY_STORAGE = "avatar.apiKey";
const TERMINAL = new Set(["completed", "failed", "cancelled", "expired"]);
// Room for the prompt's own bytes is added to this: the multipart boundaries, part headers
// and the small fields, well above what this page sends.
const FORM_OVERHEAD_BYTES = 4096;
const RECENT_LIMIT = 10;
const MAX_STREAM_FAILURES = 5;

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let limits = null;
let following = null; // the AbortController of the stream being read
let shownJob = null;
let recorder = null;
const previews = { image: null, audio: null };

// --- the API ---------------------------------------------------------------------------

function apiKey() {
  return $("api-key").value.trim();
}

async function errorOf(response) {
  try {
    const { error } = await response.json();
    if (error && error.code) return new ApiError(response.status, error.code, error.message);
  } catch {
    // not the error envelope (a storage service's own answer): fall through
  }
  return new ApiError(response.status, `HTTP_${response.status}`, response.statusText || "failed");
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const response = await fetch(path, {
    method,
    body,
    headers: { Authorization: `Bearer ${apiKey()}`, ...headers },
  });
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

async function edgeLimits() {
  if (limits === null) {
    const response = await fetch("/health");
    limits = (await response.json()).limits;
  }
  return limits;
}

// --- choosing what goes inline and what through /uploads ---------------------------------

async function contentType(file) {
  const head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
  const text = (start, end) => String.fromCharCode(...head.slice(start, end));
  if (head[0] === 0x89 && text(1, 4) === "PNG") return "image/png";
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "image/jpeg";
  if (text(0, 4) === "RIFF" && text(8, 12) === "WAVE") return "audio/wav";
  if (text(0, 3) === "ID3" || (head[0] === 0xff && (head[1] & 0xe0) === 0xe0)) return "audio/mpeg";
  return file.type || "application/octet-stream";
}

/** Fields whose files go through /uploads: none while the whole form fits the edge's inline
 * cap, else the larger file, else both. */
function uploadedFields(files, prompt, cap) {
  const room = cap - FORM_OVERHEAD_BYTES - new TextEncoder().encode(prompt).length;
  const total = files.image.size + files.audio.size;
  if (total <= room) return [];
  const [larger, smaller] =
    files.image.size >= files.audio.size ? ["image", "audio"] : ["audio", "image"];
  return files[smaller].size <= room ? [larger] : [larger, smaller];
}

async function upload(files, fields) {
  const request = {};
  for (const field of fields) {
    request[field] = { content_type: await contentType(files[field]), size_bytes: files[field].size };
  }
  const grants = await api("/uploads", {
    method: "POST",
    body: JSON.stringify(request),
    headers: { "Content-Type": "application/json" },
  });
  const ids = {};
  for (const field of fields) {
    const grant = grants[field];
    note(`Uploading the ${field}…`);
    const put = await fetch(grant.url, {
      method: grant.method,
      headers: grant.headers,
      body: files[field],
    });
    if (!put.ok) throw await errorOf(put);
    ids[`${field}_upload_id`] = grant.upload_id;
  }
  return ids;
}

async function createJob(files, options, uploaded) {
  if (Object.keys(uploaded).length === 2) {
    return api("/generate", {
      method: "POST",
      body: JSON.stringify({ ...uploaded, ...options }),
      headers: { "Content-Type": "application/json" },
    });
  }
  const form = new FormData();
  for (const field of ["image", "audio"]) {
    const id = uploaded[`${field}_upload_id`];
    if (id) form.append(`${field}_upload_id`, id);
    else form.append(field, files[field], files[field].name);
  }
  for (const [name, value] of Object.entries(options)) form.append(name, value);
  return api("/generate", { method: "POST", body: form });
}

// --- the live status: Server-Sent Events over fetch() ------------------------------------

/** The stream's events ({id, event, data}) as they arrive, per the SSE parsing rules. */
async function* serverEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (;;) {
      const end = buffer.search(/\r\n|\r|\n/);
      // A lone CR at the end may be the first half of a CRLF split across chunks.
      if (end < 0 || (end === buffer.length - 1 && buffer[end] === "\r")) break;
      const line = buffer.slice(0, end);
      buffer = buffer.slice(buffer.startsWith("\r\n", end) ? end + 2 : end + 1);
      if (line === "") {
        if (event.data.length) yield { ...event, data: event.data.join("\n") };
        event = { data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") event.data.push(value);
      else if (field === "id" && !value.includes("\0")) event.id = value;
      else if (field === "event") event.event = value;
    }
  }
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Reads the job's stream until it carries a terminal status; a dropped stream is resumed
 * with Last-Event-ID, so no event is shown twice. */
async function follow(jobId) {
  if (following) following.abort();
  const controller = new AbortController();
  following = controller;
  let lastEventId = null;
  let failures = 0;
  while (!controller.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${apiKey()}`, Accept: "text/event-stream" };
      if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch(`/jobs/${encodeURIComponent(jobId)}/events`, {
        headers,
        cache: "no-store",
        signal: controller.signal,
      });
      if (!response.ok) throw await errorOf(response);
      for await (const event of serverEvents(response.body)) {
        if (event.id !== undefined) lastEventId = event.id;
        const view = JSON.parse(event.data);
        failures = 0;
        showJob(view);
        if (TERMINAL.has(view.status)) {
          refreshRecent();
          return;
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      failures += 1;
      const permanent = error instanceof ApiError && error.status < 500 && error.status !== 429;
      if (permanent || failures > MAX_STREAM_FAILURES) {
        showError($("job-error"), error);
        return;
      }
    }
    await pause(Math.min(250 * 2 ** failures, 8000), controller.signal);
  }
}

// --- showing a job -----------------------------------------------------------------------

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const minutes = Math.floor(seconds / 60);
  const rest = String(seconds % 60).padStart(minutes ? 2 : 1, "0");
  return minutes ? `${minutes} min ${rest} s` : `${rest} s`;
}

function showError(box, error) {
  const code = document.createElement("code");
  code.textContent = error.code || "ERROR";
  box.replaceChildren(code, ` ${error.message}`);
  box.hidden = false;
}

function showJob(view) {
  shownJob = view.job_id;
  $("job").hidden = false;
  $("job-id").textContent = view.job_id;
  $("job-status").textContent = view.status;
  $("job-stage").textContent = view.stage;
  $("job-queue").textContent = view.queue_position ?? "–";
  $("job-eta").textContent = duration(view.eta_seconds);
  $("job-progress").value = view.progress;
  $("job-percent").textContent = `${Math.floor(view.progress)} %`;
  $("job-cancel").hidden = TERMINAL.has(view.status);
  const error = $("job-error");
  if (view.status === "failed" && view.error) showError(error, view.error);
  else if (view.status === "cancelled" || view.status === "expired") {
    showError(error, { code: view.status.toUpperCase(), message: "no video for this job" });
  } else error.hidden = true;
  const video = $("job-video");
  const download = $("job-download");
  const url = view.status === "completed" ? view.result_url : null;
  if (url) {
    if (video.getAttribute("src") !== url) {
      video.preload = "auto";
      video.src = url;
    }
    download.href = url;
    download.download = `${view.job_id}.mp4`;
  } else if (video.hasAttribute("src")) {
    video.removeAttribute("src");
    video.load();
  }
  video.hidden = download.hidden = !url;
  markCurrent();
}

// --- recent jobs -------------------------------------------------------------------------

function markCurrent() {
  for (const button of $("recent").querySelectorAll("button")) {
    button.setAttribute("aria-current", String(button.dataset.job === shownJob));
  }
}

function recentItem(view) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.job = view.job_id;
  const id = document.createElement("code");
  id.textContent = view.job_id;
  const status = document.createElement("span");
  status.className = `status ${view.status}`;
  status.textContent = view.status;
  const created = document.createElement("time");
  created.dateTime = view.created_at;
  created.textContent = new Date(view.created_at).toLocaleString();
  button.append(id, status, created);
  button.setAttribute("aria-label", `Job ${view.job_id}, ${view.status}, created ${created.textContent}`);
  button.addEventListener("click", () => {
    showJob(view);
    if (TERMINAL.has(view.status)) {
      if (following) following.abort();
    } else {
      follow(view.job_id);
    }
  });
  const item = document.createElement("li");
  item.append(button);
  return item;
}

async function refreshRecent() {
  const note = $("recent-note");
  note.classList.remove("bad");
  if (!apiKey()) {
    $("recent").replaceChildren();
    note.textContent = "Paste your API key to see its jobs.";
    return;
  }
  try {
    const { jobs } = await api(`/jobs?limit=${RECENT_LIMIT}`);
    $("recent").replaceChildren(...jobs.map(recentItem));
    note.textContent = jobs.length ? "" : "No jobs yet.";
    markCurrent();
  } catch (error) {
    note.classList.add("bad");
    note.textContent = `${error.code}: ${error.message}`;
  }
}

// --- the form: files, recording, submit --------------------------------------------------

function note(text) {
  $("form-note").textContent = text;
}

function showFile(kind) {
  const file = $(kind).files[0];
  const preview = $(`${kind}-preview`);
  if (previews[kind]) URL.revokeObjectURL(previews[kind]);
  previews[kind] = file ? URL.createObjectURL(file) : null;
  preview.hidden = !file;
  if (file) preview.src = previews[kind];
  else preview.removeAttribute("src");
  $(`${kind}-name`).textContent = file ? `${file.name} (${Math.ceil(file.size / 1024)} KiB)` : "";
}

function setFile(kind, file) {
  const transfer = new DataTransfer();
  transfer.items.add(file);
  $(kind).files = transfer.files;
  showFile(kind);
}

function acceptDrops(zone) {
  const kind = zone.dataset.kind;
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) setFile(kind, file);
  });
}

/** 16-bit PCM WAV, mono (channels averaged), at the decoded rate: what the edge's content
 * check accepts, whatever container the browser's MediaRecorder produced. */
function wavOf(buffer) {
  const frames = buffer.length;
  const mono = new Float32Array(frames);
  for (let channel = 0; channel < buffer.numberOfChannels; channel++) {
    const samples = buffer.getChannelData(channel);
    for (let i = 0; i < frames; i++) mono[i] += samples[i] / buffer.numberOfChannels;
  }
  const bytes = new DataView(new ArrayBuffer(44 + frames * 2));
  const ascii = (offset, text) => {
    for (let i = 0; i < text.length; i++) bytes.setUint8(offset + i, text.charCodeAt(i));
  };
  ascii(0, "RIFF");
  bytes.setUint32(4, 36 + frames * 2, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  bytes.setUint32(16, 16, true); // fmt chunk size
  bytes.setUint16(20, 1, true); // PCM
  bytes.setUint16(22, 1, true); // channels
  bytes.setUint32(24, buffer.sampleRate, true);
  bytes.setUint32(28, buffer.sampleRate * 2, true); // byte rate
  bytes.setUint16(32, 2, true); // block align
  bytes.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  bytes.setUint32(40, frames * 2, true);
  for (let i = 0; i < frames; i++) {
    const sample = Math.max(-1, Math.min(1, mono[i]));
    bytes.setInt16(44 + i * 2, sample < 0 ? sample * 0x8000 : sample * 0x7fff, true);
  }
  return bytes.buffer;
}

async function recorded(chunks) {
  const encoded = new Blob(chunks, { type: chunks[0]?.type });
  const context = new AudioContext();
  try {
    const decoded = await context.decodeAudioData(await encoded.arrayBuffer());
    return new File([wavOf(decoded)], "recording.wav", { type: "audio/wav" });
  } finally {
    await context.close();
  }
}

async function toggleRecording() {
  const button = $("record");
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    showError($("form-error"), { code: "MICROPHONE", message: error.message });
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data.size) chunks.push(event.data);
  });
  recorder.addEventListener("stop", async () => {
    for (const track of stream.getTracks()) track.stop();
    recorder = null;
    button.textContent = "Record from the microphone";
    button.setAttribute("aria-pressed", "false");
    try {
      setFile("audio", await recorded(chunks));
      note("Recording ready.");
    } catch (error) {
      showError($("form-error"), { code: "RECORDING", message: error.message });
    }
  });
  recorder.start();
  button.textContent = "Stop recording";
  button.setAttribute("aria-pressed", "true");
  note("Recording… press the button again to stop.");
}

async function submit(event) {
  event.preventDefault();
  const errorBox = $("form-error");
  errorBox.hidden = true;
  const files = { image: $("image").files[0], audio: $("audio").files[0] };
  const prompt = $("prompt").value.trim();
  const missing = !apiKey() ? "api-key" : !files.image ? "image" : !files.audio ? "audio" : !prompt ? "prompt" : null;
  if (missing) {
    const what = { "api-key": "your API key", image: "a portrait", audio: "speech", prompt: "a prompt" };
    showError(errorBox, { code: "MISSING", message: `Add ${what[missing]} first.` });
    $(missing).focus();
    return;
  }
  const button = $("submit");
  button.disabled = true;
  try {
    const { max_request_bytes: cap } = await edgeLimits();
    const fields = uploadedFields(files, prompt, cap);
    const uploaded = fields.length ? await upload(files, fields) : {};
    note("Creating the job…");
    const options = { prompt, resolution: $("resolution").value, quality: $("quality").value };
    const view = await createJob(files, options, uploaded);
    note(fields.length ? `Created; ${fields.join(" and ")} went through /uploads.` : "Created.");
    showJob(view);
    follow(view.job_id);
    refreshRecent();
  } catch (error) {
    note("");
    showError(errorBox, error);
  } finally {
    button.disabled = false;
  }
}

async function cancelShown() {
  try {
    showJob(await api(`/jobs/${encodeURIComponent(shownJob)}`, { method: "DELETE" }));
    refreshRecent();
  } catch (error) {
    showError($("job-error"), error);
  }
}

function start() {
  const key = $("api-key");
  key.value = sessionStorage.getItem(KEY_STORAGE) ?? "";
  key.addEventListener("input", () => sessionStorage.setItem(KEY_STORAGE, key.value.trim()));
  key.addEventListener("change", refreshRecent);
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    key.value = "";
    refreshRecent();
    key.focus();
  });
  for (const kind of ["image", "audio"]) $(kind).addEventListener("change", () => showFile(kind));
  for (const zone of document.querySelectorAll(".drop")) acceptDrops(zone);
  $("record").hidden = !(navigator.mediaDevices && window.MediaRecorder);
  $("record").addEventListener("click", toggleRecording);
  $("generate").addEventListener("submit", submit);
  $("job-cancel").addEventListener("click", cancelShown);
  $("refresh").addEventListener("click", refreshRecent);
  refreshRecent();
}

start();
