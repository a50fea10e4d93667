/** The toolkit's version, read from package.json (works from src/ and from dist/, both one level down). */
import { readFileSync } from 'node:fs';

/** twinscope's version (package.json `version`), as recorded in run.json and embedding keys. */
export function toolkitVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
