/** Reading the project's own sources: their files, and the relative imports between them. */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

/** The repository's root directory. */
export const ROOT = resolve(import.meta.dir, "../..");

/** cli.ts and every .ts file under cli/ and lib/, relative to the root. */
export function sourceFiles(): string[] {
  const files = ["cli.ts"];
  for (const dir of ["cli", "lib"]) {
    for (const entry of readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })) {
      if (entry.endsWith(".ts")) files.push(join(dir, entry));
    }
  }
  return files.sort();
}

/**
 * The source without its comments (an `@example` imports what it shows, not
 * what the module uses), keeping line breaks so line numbers hold. Naive: a
 * `//` or `/*` inside a string counts as a comment, which only hides code.
 */
export function withoutComments(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, ""))
    .replace(/(^|[^:])\/\/.*$/gm, "$1");
}

/** The relative specifiers a module imports or re-exports, statically or through `import()`. */
export function relativeImports(source: string): string[] {
  source = withoutComments(source);
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.\.?\/[^"']+)["']/gm;
  for (const match of source.matchAll(pattern)) found.push(match[1]);
  return found;
}

/** Each source file with the source files it imports. */
export function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles()) {
    const source = readFileSync(join(ROOT, file), "utf8");
    const dir = join(ROOT, file, "..");
    graph.set(file, relativeImports(source).map((spec) => relative(ROOT, resolve(dir, spec))));
  }
  return graph;
}

/** Every cycle found by a depth-first walk, each as the path that closes it (first node repeated at the end). */
export function findImportCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (node: string) => {
    const at = path.indexOf(node);
    if (at >= 0) {
      cycles.push([...path.slice(at), node]);
      return;
    }
    if (done.has(node)) return;
    path.push(node);
    for (const next of graph.get(node) ?? []) visit(next);
    path.pop();
    done.add(node);
  };
  for (const node of [...graph.keys()].sort()) visit(node);
  return cycles;
}
