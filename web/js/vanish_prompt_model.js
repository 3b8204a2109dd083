// The SAM 2 prompt editor's data and geometry, without any DOM or ComfyUI: parse and write the
// prompts JSON of `SAM 2 Video Prompt` (format in nodes/ops/sam2_prompts.py), edit it, and map
// between screen, canvas and frame pixels through the displayed image rectangle.

export const FORMAT_VERSION = 1;
// same order as nodes/segmentation.py PALETTE and nodes/routes.py DEFAULT_COLORS
export const PALETTE = [[255, 64, 64], [64, 153, 255], [77, 230, 77], [255, 204, 51], [217, 89, 255],
  [51, 230, 230]];
export const KINDS = ["positive", "negative", "boxes"];

export function colorOf(index) {
  return PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

export function cssColor(rgb, alpha = 1) {
  return `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${alpha})`;
}

/** An empty prompt document. */
export function emptyPrompts() {
  return { version: FORMAT_VERSION, objects: [] };
}

/**
 * Parse the widget text. Returns {doc} or {error}; never throws. Unknown top-level keys are kept
 * (written back unchanged); the editor only changes image_size and objects.
 */
export function parsePrompts(text) {
  if (typeof text !== "string" || !text.trim()) return { doc: emptyPrompts() };
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { error: `the prompts JSON is not valid (${err.message})` };
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return { error: "the prompts JSON must be an object" };
  if (!Array.isArray(raw.objects)) return { error: "the prompts JSON has no \"objects\" list" };
  const doc = { ...raw, version: raw.version ?? FORMAT_VERSION, objects: [] };
  for (const [i, obj] of raw.objects.entries()) {
    if (!obj || typeof obj !== "object") return { error: `objects[${i}] is not an object` };
    const id = Number.isInteger(obj.id) ? obj.id : i + 1;
    const frames = {};
    for (const [key, fp] of Object.entries(obj.frames || {})) {
      if (!/^\d+$/.test(key) || !fp || typeof fp !== "object") return { error: `object ${id} has a bad frame "${key}"` };
      const clean = {};
      for (const kind of KINDS) {
        const list = fp[kind] || [];
        if (!Array.isArray(list)) return { error: `object ${id} frame ${key}: "${kind}" is not a list` };
        const width = kind === "boxes" ? 4 : 2;
        for (const item of list) {
          if (!Array.isArray(item) || item.length !== width || !item.every(Number.isFinite)) {
            return { error: `object ${id} frame ${key}: ${JSON.stringify(item)} is not a ${kind === "boxes" ? "box" : "point"}` };
          }
        }
        clean[kind] = list.map((v) => v.slice());
      }
      frames[String(Number(key))] = clean;
    }
    const entry = { ...obj, id, frames };
    doc.objects.push(entry);
  }
  return { doc };
}

const round1 = (v) => Math.round(v * 10) / 10;

function cleanFrames(frames) {
  const out = {};
  for (const key of Object.keys(frames).sort((a, b) => Number(a) - Number(b))) {
    const fp = {};
    for (const kind of KINDS) {
      const list = frames[key][kind] || [];
      if (list.length) fp[kind] = list.map((v) => v.map(round1));
    }
    if (Object.keys(fp).length) out[key] = fp;
  }
  return out;
}

/**
 * The widget text for a document: objects without prompts and empty frames are left out (the
 * node refuses them), coordinates rounded to 0.1 px, one object per line.
 */
export function serializePrompts(doc) {
  const head = {};
  for (const [key, value] of Object.entries(doc)) if (key !== "objects") head[key] = value;
  head.version = doc.version ?? FORMAT_VERSION;
  const objects = doc.objects
    .map((obj) => ({ ...obj, frames: cleanFrames(obj.frames || {}) }))
    .filter((obj) => Object.keys(obj.frames).length);
  const headText = Object.entries(head).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  const lines = objects.map((obj) => "  " + JSON.stringify(obj));
  return `{${headText.join(", ")},\n "objects": [${lines.length ? "\n" + lines.join(",\n") + "\n " : ""}]}`;
}

export function cloneDoc(doc) {
  return JSON.parse(JSON.stringify(doc));
}

export function findObject(doc, id) {
  return doc.objects.find((o) => o.id === id) || null;
}

/** The object with `id`, created (at the end) when missing. */
export function ensureObject(doc, id) {
  let obj = findObject(doc, id);
  if (!obj) {
    obj = { id, frames: {} };
    doc.objects.push(obj);
  }
  return obj;
}

export function framePrompts(obj, frame) {
  const key = String(frame);
  if (!obj.frames[key]) obj.frames[key] = { positive: [], negative: [], boxes: [] };
  for (const kind of KINDS) obj.frames[key][kind] = obj.frames[key][kind] || [];
  return obj.frames[key];
}

function dropEmptyFrame(obj, frame) {
  const fp = obj.frames[String(frame)];
  if (fp && KINDS.every((k) => !(fp[k] || []).length)) delete obj.frames[String(frame)];
}

export function addPoint(doc, id, frame, kind, x, y) {
  framePrompts(ensureObject(doc, id), frame)[kind].push([round1(x), round1(y)]);
}

export function addBox(doc, id, frame, x0, y0, x1, y1) {
  const box = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)].map(round1);
  framePrompts(ensureObject(doc, id), frame).boxes.push(box);
}

export function removeItem(doc, hit) {
  const obj = findObject(doc, hit.id);
  const fp = obj && obj.frames[String(hit.frame)];
  if (!fp) return false;
  fp[hit.kind].splice(hit.index, 1);
  dropEmptyFrame(obj, hit.frame);
  return true;
}

export function clearFrame(doc, frame) {
  for (const obj of doc.objects) delete obj.frames[String(frame)];
}

/** Frame indices that carry any prompt, ascending. */
export function promptedFrames(doc) {
  const set = new Set();
  for (const obj of doc.objects) {
    for (const [key, fp] of Object.entries(obj.frames)) {
      if (KINDS.some((k) => (fp[k] || []).length)) set.add(Number(key));
    }
  }
  return [...set].sort((a, b) => a - b);
}

// ------------------------------------------------------------------------------- geometry
/**
 * Where a frame of `frameW` x `frameH` is drawn inside a `boxW` x `boxH` area (letterboxed,
 * centred, aspect kept): {x, y, w, h} in the area's pixels.
 */
export function fitRect(boxW, boxH, frameW, frameH) {
  if (!(boxW > 0 && boxH > 0 && frameW > 0 && frameH > 0)) return { x: 0, y: 0, w: 0, h: 0 };
  const scale = Math.min(boxW / frameW, boxH / frameH);
  const w = frameW * scale;
  const h = frameH * scale;
  return { x: (boxW - w) / 2, y: (boxH - h) / 2, w, h };
}

/**
 * Screen (client) position -> frame pixels. `elementRect` is the canvas element's
 * getBoundingClientRect() (it includes the graph canvas zoom), `layoutW/H` its unscaled CSS
 * size, `image` the fitRect of the frame in that layout. Returns {x, y, inside}.
 */
export function clientToFrame(clientX, clientY, elementRect, layoutW, layoutH, image, frameW, frameH) {
  const lx = ((clientX - elementRect.left) / elementRect.width) * layoutW;
  const ly = ((clientY - elementRect.top) / elementRect.height) * layoutH;
  const x = ((lx - image.x) / image.w) * frameW;
  const y = ((ly - image.y) / image.h) * frameH;
  const inside = x >= 0 && y >= 0 && x <= frameW && y <= frameH;
  return { x, y, inside };
}

/** Frame pixels -> canvas layout pixels (for drawing). */
export function frameToLayout(x, y, image, frameW, frameH) {
  return { x: image.x + (x / frameW) * image.w, y: image.y + (y / frameH) * image.h };
}

export function clampToFrame(p, frameW, frameH) {
  return { x: Math.min(Math.max(p.x, 0), frameW), y: Math.min(Math.max(p.y, 0), frameH) };
}

/**
 * The point (or box corner handle) under a layout position on `frame`, within `radius` layout px:
 * {id, frame, kind, index} or null. Later items win (they are drawn on top).
 */
export function hitTest(doc, frame, lx, ly, image, frameW, frameH, radius) {
  let best = null;
  let bestDist = radius;
  for (const obj of doc.objects) {
    const fp = obj.frames[String(frame)];
    if (!fp) continue;
    for (const kind of KINDS) {
      (fp[kind] || []).forEach((v, index) => {
        // a box is removed through its handle: the top-right corner
        const p = kind === "boxes" ? frameToLayout(v[2], v[1], image, frameW, frameH)
          : frameToLayout(v[0], v[1], image, frameW, frameH);
        const d = Math.hypot(p.x - lx, p.y - ly);
        if (d <= bestDist) {
          bestDist = d;
          best = { id: obj.id, frame, kind, index };
        }
      });
    }
  }
  return best;
}
