import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { iconSources, renderIcon } from './icon-files';

/**
 * `npm run icons`: writes every icon's SVG source and PNGs from `scripts/icon-art.ts`. Run it after changing
 * the art, and commit what it wrote (the unit tests fail while the committed files differ from the art).
 */
async function main(): Promise<void> {
  let written = 0;
  for (const source of iconSources()) {
    await mkdir(dirname(source.svgPath), { recursive: true });
    await writeFile(source.svgPath, source.svg);
    written += 1;
    for (const png of source.pngs) {
      await mkdir(dirname(png.path), { recursive: true });
      await writeFile(png.path, renderIcon(source.svg, png.size).png);
      written += 1;
    }
  }
  console.log(
    `wrote ${written} icon files under ${relative(process.cwd(), dirname(dirname(iconSources()[0]!.svgPath)))}`,
  );
}

await main();
