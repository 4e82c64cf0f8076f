// Builds web/dist: our ES modules and pages as they are, MapLibre's files from node_modules,
// and the PWA's icons as PNGs drawn here (no image tools needed). Run by `npm run build`.
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "vendor"), { recursive: true });
mkdirSync(join(dist, "icons"), { recursive: true });

cpSync(join(here, "src"), dist, { recursive: true });

// Pieces the office pages share (the sign-in form), written once in src/partials: a line
// `<!-- include: partials/NAME.html -->` of a page becomes the piece, at that line's indent.
// A page naming a piece that is not there fails the build rather than shipping without it.
const INCLUDE = /^([ \t]*)<!-- include: (partials\/[\w-]+\.html) -->[ \t]*$/gm;
for (const name of readdirSync(dist).filter((n) => n.endsWith(".html"))) {
  const page = join(dist, name);
  const text = readFileSync(page, "utf8").replace(INCLUDE, (_, indent, piece) =>
    readFileSync(join(here, "src", piece), "utf8")
      .trimEnd()
      .split("\n")
      .map((line) => (line ? indent + line : line))
      .join("\n"),
  );
  if (text.includes("<!-- include:")) throw new Error(`${name}: an include line not understood`);
  writeFileSync(page, text);
}
rmSync(join(dist, "partials"), { recursive: true });
const maplibre = join(here, "node_modules", "maplibre-gl", "dist");
for (const name of ["maplibre-gl.js", "maplibre-gl.css", "LICENSE.txt"]) {
  cpSync(join(maplibre, name), join(dist, "vendor", name === "LICENSE.txt" ? "maplibre-LICENSE.txt" : name));
}

// --- PNG icons: a teal tile with a white grid mark ---------------------------------------------
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function icon(size) {
  const rows = [];
  const line = Math.max(2, Math.round(size / 32));
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 4); // filter byte 0, then RGBA
    for (let x = 0; x < size; x++) {
      const inner = x > size * 0.2 && x < size * 0.8 && y > size * 0.2 && y < size * 0.8;
      const onGrid = [0.2, 0.4, 0.6, 0.8].some(
        (f) => Math.abs(x - size * f) < line || Math.abs(y - size * f) < line,
      );
      const white = inner && onGrid;
      const px = white ? [255, 255, 255, 255] : [13, 110, 110, 255];
      row.set(px, 1 + x * 4);
    }
    rows.push(row);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
for (const size of [192, 512]) writeFileSync(join(dist, "icons", `icon-${size}.png`), icon(size));

// A content hash of everything built: the service worker's cache name changes with it.
const hash = createHash("sha256");
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else hash.update(entry.name).update(readFileSync(path));
  }
};
walk(dist);
const version = hash.digest("hex").slice(0, 12);
writeFileSync(join(dist, "version.json"), JSON.stringify({ version }) + "\n");
console.log(`built web/dist (version ${version})`);
