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
const previews = { picture: null, audio: null, audio2: null };
const SOURCES = {
  given: "the boxes sent",
  detected: "faces found",
  halves: "not two faces: the image's halves",
};

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
  if (text(4, 8) === "ftyp") return text(8, 12) === "qt  " ? "video/quicktime" : "video/mp4";
  if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return "video/webm";
  return file.type || "application/octet-stream";
}

/** The field a picture is sent as: `video` (dubbing) for a video, else `image`. */
async function pictureField(file) {
  return (await contentType(file)).startsWith("video/") ? "video" : "image";
}

/** Fields whose files go through /uploads: none while the whole form fits the edge's inline
 * cap, else the largest files until the rest fits. */
function uploadedFields(files, prompt, cap) {
  const room = cap - FORM_OVERHEAD_BYTES - new TextEncoder().encode(prompt).length;
  const largestFirst = Object.keys(files).sort((a, b) => files[b].size - files[a].size);
  let inline = largestFirst.reduce((sum, field) => sum + files[field].size, 0);
  const fields = [];
  for (const field of largestFirst) {
    if (inline <= room) break;
    fields.push(field);
    inline -= files[field].size;
  }
  return fields;
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

/** JSON when every file was uploaded, else multipart (where boxes travel as JSON text). */
async function createJob(files, options, uploaded) {
  if (Object.keys(uploaded).length === Object.keys(files).length) {
    return api("/generate", {
      method: "POST",
      body: JSON.stringify({ ...uploaded, ...options }),
      headers: { "Content-Type": "application/json" },
    });
  }
  const form = new FormData();
  for (const [field, file] of Object.entries(files)) {
    const id = uploaded[`${field}_upload_id`];
    if (id) form.append(`${field}_upload_id`, id);
    else form.append(field, file, file.name);
  }
  for (const [name, value] of Object.entries(options)) {
    form.append(name, typeof value === "string" ? value : JSON.stringify(value));
  }
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
  showInputs(view);
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

/** The job's picture (image or video to dub) and speakers, with their boxes once chosen. */
function showInputs(view) {
  $("job-input").textContent = view.input_kind === "video" ? "video (dubbing)" : "image";
  $("job-speakers").textContent = view.speaker_mode ? `two, ${view.speaker_mode}` : "one";
  const boxes = $("job-boxes");
  boxes.hidden = !view.speaker_mode;
  if (!view.speakers) {
    boxes.textContent = "Where each speaker is: not chosen yet.";
    return;
  }
  const { source, boxes: [first, second] } = view.speakers;
  boxes.textContent =
    `Where each speaker is: ${source} (${SOURCES[source] ?? source}); ` +
    `audio at [${first.join(", ")}], audio2 at [${second.join(", ")}].`;
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

/** Shows the input's file in `preview` (the drop zone's other previews are emptied). */
function showFile(name, preview = $(`${name}-preview`)) {
  const file = $(name).files[0];
  if (previews[name]) URL.revokeObjectURL(previews[name]);
  previews[name] = file ? URL.createObjectURL(file) : null;
  for (const element of $(`${name}-drop`).querySelectorAll(".preview")) {
    const used = Boolean(file) && element === preview;
    element.hidden = !used;
    if (used) element.src = previews[name];
    else element.removeAttribute("src");
  }
  $(`${name}-name`).textContent = file ? `${file.name} (${Math.ceil(file.size / 1024)} KiB)` : "";
}

/** A video has one speaker: the API refuses `audio2` with it (TWO_SPEAKERS_UNSUPPORTED). */
async function showPicture() {
  const file = $("picture").files[0];
  const field = file ? await pictureField(file) : "image";
  if ($("picture").files[0] !== file) return; // another file was chosen meanwhile
  showFile("picture", $(`${field}-preview`));
  const dubbing = field === "video";
  $("audio2-drop").disabled = dubbing;
  $("audio2-note").textContent = dubbing
    ? "A video to dub has one speaker: the API takes a second track only with a portrait."
    : "";
}

function showSecondSpeaker() {
  showFile("audio2");
  $("speaker-options").hidden = !$("audio2").files[0];
}

function removeSecondSpeaker() {
  $("audio2").value = "";
  showSecondSpeaker();
  $("audio2").focus();
}

const SHOW = { picture: showPicture, audio: () => showFile("audio"), audio2: showSecondSpeaker };

function setFile(name, file) {
  const transfer = new DataTransfer();
  transfer.items.add(file);
  $(name).files = transfer.files;
  SHOW[name]();
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
    if (file && !zone.disabled) setFile(kind, file);
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

/** The optional speaker boxes: parsed here, so that a JSON body can carry them as an array. */
function speakerBoxes() {
  const text = $("speaker-boxes").value.trim();
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(400, "INVALID_INPUT", "Boxes must be JSON: [[x1, y1, x2, y2], [x1, y1, x2, y2]].");
  }
}

/** The files by API field: the picture as `image` or `video`, `audio`, and `audio2` when a
 * second speaker was chosen for a portrait. */
async function jobFiles(chosen) {
  const field = await pictureField(chosen.picture);
  const files = { [field]: chosen.picture, audio: chosen.audio };
  if (chosen.audio2 && field === "image") files.audio2 = chosen.audio2;
  return files;
}

function jobOptions(prompt, files) {
  const options = { prompt, resolution: $("resolution").value, quality: $("quality").value };
  if (files.audio2) {
    options.speaker_mode = $("speaker-mode").value;
    const boxes = speakerBoxes();
    if (boxes !== undefined) options.speaker_boxes = boxes;
  }
  return options;
}

async function submit(event) {
  event.preventDefault();
  const errorBox = $("form-error");
  errorBox.hidden = true;
  const chosen = { picture: $("picture").files[0], audio: $("audio").files[0], audio2: $("audio2").files[0] };
  const prompt = $("prompt").value.trim();
  const missing = !apiKey() ? "api-key" : !chosen.picture ? "picture" : !chosen.audio ? "audio" : !prompt ? "prompt" : null;
  if (missing) {
    const what = { "api-key": "your API key", picture: "a portrait or a video", audio: "speech", prompt: "a prompt" };
    showError(errorBox, { code: "MISSING", message: `Add ${what[missing]} first.` });
    $(missing).focus();
    return;
  }
  const button = $("submit");
  button.disabled = true;
  try {
    const files = await jobFiles(chosen);
    const options = jobOptions(prompt, files);
    const { max_request_bytes: cap } = await edgeLimits();
    const fields = uploadedFields(files, prompt, cap);
    const uploaded = fields.length ? await upload(files, fields) : {};
    note("Creating the job…");
    const view = await createJob(files, options, uploaded);
    note(fields.length ? `Created; ${new Intl.ListFormat("en").format(fields)} went through /uploads.` : "Created.");
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
  for (const [name, show] of Object.entries(SHOW)) $(name).addEventListener("change", show);
  $("audio2-remove").addEventListener("click", removeSecondSpeaker);
  for (const zone of document.querySelectorAll(".drop")) acceptDrops(zone);
  $("record").hidden = !(navigator.mediaDevices && window.MediaRecorder);
  $("record").addEventListener("click", toggleRecording);
  $("generate").addEventListener("submit", submit);
  $("job-cancel").addEventListener("click", cancelShown);
  $("refresh").addEventListener("click", refreshRecent);
  refreshRecent();
}

start();
