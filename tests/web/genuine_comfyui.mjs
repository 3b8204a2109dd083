// Manual check against a genuine ComfyUI (not part of the test suite: needs a running server).
//
//   node tests/web/genuine_comfyui.mjs http://127.0.0.1:8199 comfyui-vanish [screenshot folder]
//
// With the pack installed as custom_nodes/<module> and empty models folders, it checks what the
// issue found in the real frontend: the template browser lists every workflow with its picture,
// each workflow opens with its Note and first column clear of the sidebar and the tab bar, no two
// nodes overlap at the sizes the frontend gives them, and the missing-model dialog names the
// ProPainter files. Prints one "ok"/"FAIL" line per check and the measured sizes.
import { chromium } from "playwright-core";

const [base = "http://127.0.0.1:8199", module = "comfyui-vanish", shots = ""] = process.argv.slice(2);
const CHROMIUM = process.env.VANISH_CHROMIUM || "/usr/bin/chromium";
let failures = 0;
const check = (name, ok, detail = "") => {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : " " + detail}`);
  if (!ok) failures += 1;
};

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1920, height: 950 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const thumbs = []; // the card pictures the browser fetched (status and URL)
  page.on("response", (r) => { if (/\.jpg($|\?)/.test(r.url())) thumbs.push(`${r.status()} ${decodeURIComponent(r.url())}`); });
  await page.goto(base);
  await page.waitForFunction(() => window.app?.graph && window.app?.canvas, null, { timeout: 120000 });
  await page.waitForTimeout(3000);

  const templates = await (await page.request.get(`${base}/api/workflow_templates`)).json();
  const names = templates[module] || [];
  check("the template route lists the workflows", names.length >= 5, JSON.stringify(templates));
  for (const name of names) {
    const jpg = await page.request.get(`${base}/api/workflow_templates/${module}/${encodeURIComponent(name)}.jpg`);
    check(`thumbnail of '${name}' is served`, jpg.ok() && (jpg.headers()["content-type"] || "").includes("image"), String(jpg.status()));
  }
  // the sidebar and the top bar as this frontend draws them
  const chrome = await page.evaluate(() => {
    const canvas = document.querySelector("#graph-canvas")?.getBoundingClientRect();
    const boxes = [...document.querySelectorAll("nav, .side-tool-bar-container, .comfyui-menu, .workflow-tabs-container, .top-menu, .actionbar, header")]
      .map((el) => { const r = el.getBoundingClientRect(); return { cls: el.className?.toString?.().slice(0, 60), l: r.left, t: r.top, r: r.right, b: r.bottom }; })
      .filter((r) => r.r > r.l && r.b > r.t);
    return { canvas: canvas && { l: canvas.left, t: canvas.top, r: canvas.right, b: canvas.bottom }, boxes };
  });
  console.log("chrome:", JSON.stringify(chrome));
  const left = Math.max(0, ...chrome.boxes.filter((b) => b.l < 5 && b.b - b.t > 300).map((b) => b.r));
  const top = Math.max(0, ...chrome.boxes.filter((b) => b.t < 5 && b.r - b.l > 600).map((b) => b.b));
  console.log(`sidebar right edge ${left}px, top bars bottom edge ${top}px`);

  for (const name of names) {
    const workflow = await (await page.request.get(`${base}/api/workflow_templates/${module}/${encodeURIComponent(name)}.json`)).json();
    await page.evaluate(async (w) => { await window.app.loadGraphData(w, true, true, null); }, workflow);
    await page.waitForTimeout(2500);
    const state = await page.evaluate(() => {
      const app = window.app;
      const ds = app.canvas.ds;
      const title = window.LiteGraph?.NODE_TITLE_HEIGHT ?? 30;
      return {
        scale: ds.scale, offset: [...ds.offset],
        nodes: app.graph.nodes.map((n) => ({ id: n.id, type: n.type, pos: [...n.pos], size: [...n.size],
          screen: [(n.pos[0] + ds.offset[0]) * ds.scale, (n.pos[1] - title + ds.offset[1]) * ds.scale,
            (n.pos[0] + n.size[0] + ds.offset[0]) * ds.scale, (n.pos[1] + n.size[1] + ds.offset[1]) * ds.scale] })),
      };
    });
    // the missing-model report: a dialog (older frontends) or the error panel behind "View details"
    const details = page.getByText("View details");
    if (await details.count()) await details.first().click().catch(() => {});
    await page.waitForTimeout(1500);
    state.dialog = await page.evaluate(() => document.body.innerText);
    const stored = Object.fromEntries(workflow.nodes.map((n) => [n.id, n.size]));
    for (const n of state.nodes) {
      const grew = n.size[0] > stored[n.id][0] + 0.5 || n.size[1] > stored[n.id][1] + 0.5;
      console.log(`  ${name} #${n.id} ${n.type}: saved ${stored[n.id]} -> shown ${n.size.map(Math.round)}${grew ? "  (GREW)" : ""}`);
    }
    for (const a of state.nodes) for (const b of state.nodes) {
      if (a.id >= b.id) continue;
      const [ra, rb] = [a.screen, b.screen];
      const apart = ra[2] <= rb[0] || rb[2] <= ra[0] || ra[3] <= rb[1] || rb[3] <= ra[1];
      check(`${name}: #${a.id} ${a.type} and #${b.id} ${b.type} do not overlap`, apart, JSON.stringify([ra, rb]));
    }
    const minLeft = Math.min(...state.nodes.map((n) => n.screen[0]));
    const minTop = Math.min(...state.nodes.map((n) => n.screen[1]));
    check(`${name}: everything right of the sidebar (${left}px) and below the top bars (${top}px)`,
      minLeft >= left && minTop >= top, JSON.stringify({ minLeft, minTop, scale: state.scale }));
    if (name.includes("Remove an object") || name.includes("fixed region")) {
      check(`${name}: the missing-model dialog names the ProPainter files`,
        ["raft-things.pth", "recurrent_flow_completion.pth", "ProPainter.pth"].every((f) => state.dialog.includes(f)),
        state.dialog.slice(0, 1500));
    }
    if (shots) await page.screenshot({ path: `${shots}/${name}.png` });
    await page.keyboard.press("Escape");
  }
  // a new prompt node at 100 % zoom: its editor canvas is at least 512 px wide
  await page.evaluate(() => window.app.graph.clear());
  await page.evaluate(() => {
    const node = window.LiteGraph.createNode("VanishSAM2VideoPrompt");
    node.pos = [100, 100];
    window.app.graph.add(node);
    window.app.canvas.ds.scale = 1;
    window.app.canvas.ds.offset = [0, 0];
    window.app.graph.setDirtyCanvas(true, true);
  });
  await page.waitForTimeout(2000);
  const editor = await page.evaluate(() => {
    const c = document.querySelector(".vanish-editor canvas");
    const n = window.app.graph.nodes.find((x) => x.type === "VanishSAM2VideoPrompt");
    return { canvas: c ? [c.clientWidth, c.clientHeight] : null, node: n ? [...n.size] : null };
  });
  console.log("new prompt node:", JSON.stringify(editor));
  check("a new prompt node's canvas is >= 512 px wide at 100 % zoom", editor.canvas && editor.canvas[0] >= 512 && editor.canvas[1] >= 200,
    JSON.stringify(editor));
  if (shots) await page.screenshot({ path: `${shots}/new_prompt_node.png` });
  if (shots) {
    await page.evaluate(() => window.app.extensionManager?.command?.execute?.("Comfy.BrowseTemplates"));
    await page.waitForTimeout(3000);
    // the pack's entry under "Extensions" in the browser's navigation
    await page.evaluate((name) => {
      const span = [...document.querySelectorAll("span")].find((e) => e.textContent.trim() === name);
      (span?.closest("button, a, li, [role=button], [role=option]") ?? span)?.click();
    }, module);
    await page.waitForTimeout(2500);
    const cards = await page.evaluate(() => document.body.innerText);
    check("the template browser shows the readable titles", cards.includes("Vanish - Remove an object"), cards.slice(0, 300));
    const images = thumbs.filter((t) => t.startsWith("200 ") && t.includes(`/workflow_templates/${module}/`));
    check("the template cards load the thumbnails", new Set(images).size >= names.length, JSON.stringify(thumbs));
    await page.screenshot({ path: `${shots}/templates.png` });
  }
  check("no page errors", errors.length === 0, errors.join("; "));
} finally {
  await browser.close();
}
console.log(failures ? `${failures} check(s) failed` : "all checks passed");
process.exit(failures ? 1 : 0);
