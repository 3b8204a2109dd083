// Where the SAM 2 prompt editor gets its frames (no ComfyUI imports; `api` is passed in):
// the Load Video Frames node feeding `frames` (GET /vanish/video_info and /vanish/frame with its
// file and frame selection), else the frames the prompt node stored on its last run
// (the "vanish.run_frames" message, or GET /vanish/run_frames after a page reload).

export const LOADER_TYPE = "VanishLoadVideoFrames";
export const MAX_SIDE = 1280; // frames are fetched at most this large; clicks map to the real size

/** node id (string) -> {refs, size: [W, H], stamp}: the last run's frames of each prompt node. */
export const runFrames = new Map();

function linkOf(graph, id) {
  if (!graph || id == null) return null;
  const links = graph.links;
  if (links && typeof links.get === "function") return links.get(id) ?? null;
  return links ? links[id] ?? null : null;
}

function widgetValue(node, name, fallback) {
  const w = node.widgets?.find((x) => x.name === name);
  return w && w.value !== undefined && w.value !== null ? w.value : fallback;
}

/** The Load Video Frames node feeding `frames` (null when unconnected or another node). */
export function loaderFor(node) {
  const input = node.inputs?.find((i) => i.name === "frames");
  const link = linkOf(node.graph, input?.link);
  const origin = link ? node.graph.getNodeById(link.origin_id) : null;
  const type = origin?.comfyClass ?? origin?.type;
  return type === LOADER_TYPE ? origin : null;
}

/** The /vanish/frame query for a loader node's widgets (file + frame selection). */
export function loaderParams(loader) {
  const path = String(widgetValue(loader, "path", "") || "").trim();
  return {
    file: path || String(widgetValue(loader, "video", "") || ""),
    skip_first: widgetValue(loader, "skip_first_frames", 0),
    cap: widgetValue(loader, "frame_load_cap", 0),
    every_nth: widgetValue(loader, "select_every_nth", 1),
    force_rate: widgetValue(loader, "force_rate", 0),
    width: widgetValue(loader, "custom_width", 0),
    height: widgetValue(loader, "custom_height", 0),
  };
}

/** What the node's frames come from now: {kind: "loader"|"run", key, params|run}, or null. */
export function describeSource(node) {
  const loader = loaderFor(node);
  if (loader) {
    const params = loaderParams(loader);
    return { kind: "loader", key: "L" + JSON.stringify(params), params };
  }
  const run = runFrames.get(String(node.id));
  if (run) return { kind: "run", key: "R" + run.refs.map((r) => r.filename).join(",") + run.stamp, run };
  return null;
}

/** URL of frame `index` of a loaded source. */
export function frameUrl(source, index) {
  if (source.kind === "run") {
    const ref = source.run.refs[index];
    return "/vanish/run_frame?" + new URLSearchParams({ filename: ref.filename, subfolder: ref.subfolder });
  }
  return "/vanish/frame?" + new URLSearchParams({ ...source.params, index: String(index), max_side: String(MAX_SIDE) });
}

/** The "frame" member of a POST /vanish/preview body. */
export function previewFrame(source, index) {
  if (source.kind === "run") {
    const ref = source.run.refs[index];
    return { filename: ref.filename, subfolder: ref.subfolder };
  }
  return { ...source.params, index };
}

/** The text of a route's JSON error ("problem Fix: fix"). */
export async function errorText(response) {
  try {
    const body = await response.json();
    return body.error ? body.error + (body.fix ? ` Fix: ${body.fix}` : "") : `error ${response.status}`;
  } catch {
    return `error ${response.status}`;
  }
}

/** Remember a run's frames from the "vanish.run_frames" message (or the route's answer). */
export function rememberRunFrames(detail, stamp = Date.now()) {
  if (!detail?.node || !Array.isArray(detail.vanish_frames) || !detail.vanish_frames.length) return;
  runFrames.set(String(detail.node), { refs: detail.vanish_frames, size: detail.vanish_frame_size, stamp });
}

/** Ask the server for a node's last-run frames (after a page reload its output may be cached). */
export async function fetchRunFrames(api, nodeId, log) {
  const id = String(nodeId);
  const url = "/vanish/run_frames?" + new URLSearchParams({ node: id });
  log?.push(url);
  try {
    const response = await api.fetchApi(url);
    if (response.ok && !runFrames.has(id)) rememberRunFrames({ node: id, ...(await response.json()) }, 0);
  } catch {
    // no route (the pack is missing on the server): frames appear after the next run
  }
}
