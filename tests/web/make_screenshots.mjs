// Screenshots of the prompt editor in a running ComfyUI for the README (not part of the tests).
//
//   VANISH_COMFY_URL=http://127.0.0.1:8188 VANISH_CLIP=bmx node tests/web/make_screenshots.mjs
//
// VANISH_CLIP names the bmx-trees frames folder (shared/clips/bmx-trees/frames) copied into
// ComfyUI's input folder. Writes docs/img/prompt_editor*.png. Clicks go through the real mouse at
// the screen position of each frame pixel, like a user's.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const URL_ = process.env.VANISH_COMFY_URL || "http://127.0.0.1:8188";
const CLIP = process.env.VANISH_CLIP || "bmx";
const OUT = join(ROOT, "docs", "img");

const browser = await chromium.launch({ executablePath: process.env.VANISH_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
const page = await browser.newPage({ viewport: { width: 1800, height: 1000 } });
await page.goto(URL_, { waitUntil: "networkidle", timeout: 90000 });
await page.waitForFunction(() => window.app && window.app.graph, null, { timeout: 60000 });
await page.waitForTimeout(1500);
await page.evaluate((clip) => {
  const { app, LiteGraph } = window;
  app.graph.clear();
  const loader = LiteGraph.createNode("VanishLoadVideoFrames");
  loader.pos = [40, 110];
  app.graph.add(loader);
  loader.widgets.find((w) => w.name === "video").value = clip;
  const node = LiteGraph.createNode("VanishSAM2VideoPrompt");
  node.pos = [360, 110];
  app.graph.add(node);
  node.setSize([560, 700]);
  loader.connect(0, node, node.inputs.findIndex((i) => i.name === "frames"));
  app.canvas.ds.scale = 1;
  app.canvas.ds.offset = [0, 0];
  app.graph.setDirtyCanvas(true, true);
}, CLIP);
const hideNotices = () => page.evaluate(() => { // the frontend's toasts would cover the node
  for (const el of document.querySelectorAll("body *")) {
    if (getComputedStyle(el).position === "fixed" && /toast/i.test(el.className)) el.style.display = "none";
  }
});
const editor = "window.app.graph._nodes.find((n) => n.type === 'VanishSAM2VideoPrompt').__vanishEditor";
const waitFrame = (t) => page.waitForFunction(`${editor}.cache.has(${t}) && ${editor}.frame === ${t}`, null, { timeout: 30000 });
await waitFrame(0);

async function at(fx, fy) {
  return page.evaluate(([fx, fy]) => {
    const e = window.app.graph._nodes.find((n) => n.type === "VanishSAM2VideoPrompt").__vanishEditor;
    const { w, h, size, image } = e.layout();
    const r = e.canvas.getBoundingClientRect();
    const zoom = r.width / w;
    return { x: r.left + (image.x + (fx / size[0]) * image.w) * zoom, y: r.top + (image.y + (fy / size[1]) * image.h) * zoom };
  }, [fx, fy]);
}
const click = async (fx, fy, options) => { const p = await at(fx, fy); await page.mouse.click(p.x, p.y, options); };
async function drag(x0, y0, x1, y1) {
  const a = await at(x0, y0);
  const b = await at(x1, y1);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(b.x, b.y, { steps: 8 });
  await page.mouse.up();
}
async function goTo(t) {
  await page.evaluate(([t]) => {
    const s = document.querySelector(".vanish-editor input[type=range]");
    s.value = String(t);
    s.dispatchEvent(new Event("input"));
  }, [t]);
  await waitFrame(t);
}
const shot = async (name) => {
  await hideNotices();
  const box = await page.evaluate(() => {
    const n = window.app.graph._nodes.find((x) => x.type === "VanishSAM2VideoPrompt");
    const ds = window.app.canvas.ds;
    const r = window.app.canvas.canvas.getBoundingClientRect();
    return { x: r.left + (n.pos[0] + ds.offset[0]) * ds.scale - 6, y: r.top + (n.pos[1] + ds.offset[1]) * ds.scale - 36,
      width: n.size[0] * ds.scale + 12, height: n.size[1] * ds.scale + 44 };
  });
  await page.screenshot({ path: join(OUT, name), clip: box });
  console.log("wrote", join(OUT, name));
};

// object 1 (the rider): two clicks and a negative click on the wall; object 2 (the bike): a box
await click(230, 95);
await click(228, 122);
await click(300, 60, { button: "right" });
await page.click('.vanish-editor button[data-action="new"]');
await drag(182, 104, 282, 178);
await goTo(20);
await page.selectOption(".vanish-editor select", "1");
await click(203, 92);
await click(172, 150, { button: "right" });
await page.selectOption(".vanish-editor select", "2");
await drag(181, 108, 248, 166);
await goTo(0);
await page.selectOption(".vanish-editor select", "1");
await page.waitForTimeout(300);
await shot("prompt_editor.png");
await goTo(20);
await page.waitForTimeout(300);
await shot("prompt_editor_frame20.png");
await browser.close();
