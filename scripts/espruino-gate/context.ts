// What every gate rule sees: the parsed program, its scopes (eslint-scope), and where to report.
// Rules ask "is this identifier the global X?" here, so a local variable named Map is never refused.
import type { Scope, ScopeManager, Reference, Variable } from 'eslint-scope';
import type { Identifier, Node, Program } from 'estree';

/** One thing Espruino cannot run, or runs differently, and where it is in the checked code. */
export interface Violation {
  /** Stable rule id, e.g. `destructuring`, `missing-global`, `use-before-declaration`. */
  rule: string;
  /** The construct and why it is refused, e.g. "Map is missing on Espruino". */
  message: string;
  /** 1-based line and 0-based column in the checked code (as acorn and source maps count). */
  line: number;
  column: number;
  /** Character offset in the checked code. */
  offset: number;
  /**
   * The identifiers the message quotes ('x'), with their positions, so a build can put back the
   * original names from the source map in place of minified ones.
   */
  identifiers?: NamedPosition[];
}

export interface NamedPosition {
  name: string;
  line: number;
  column: number;
}

type Located = Node & { range?: [number, number]; loc?: { start: { line: number; column: number } } | null };

/** Start offset of an acorn node (parsed with `ranges: true`). */
export function startOf(node: Node): number {
  const range = (node as Located).range;
  if (range === undefined) throw new Error(`espruino-gate: node ${node.type} has no range (parse with ranges: true)`);
  return range[0];
}

/** Scope types whose code runs later than the code around them (a call, a `new`). */
const deferredScopeTypes = new Set(['function', 'class-field-initializer']);

export class GateContext {
  readonly violations: Violation[] = [];
  private readonly referenceByIdentifier = new Map<Identifier, Reference>();
  private readonly ownerCache = new Map<Scope, Scope>();

  constructor(
    readonly code: string,
    readonly program: Program,
    readonly scopeManager: ScopeManager,
    /** Refuse reads of names declared nowhere that are no Espruino global (rule unknown-global). */
    readonly refuseUndeclared: boolean,
    /** Added to every reported position: used when checking the text of an `eval("...")`. */
    private readonly positionOverride?: { line: number; column: number; offset: number },
  ) {
    for (const scope of scopeManager.scopes) {
      for (const reference of scope.references) this.referenceByIdentifier.set(reference.identifier as Identifier, reference);
    }
  }

  report(node: Node, rule: string, message: string, identifiers?: Identifier[]): void {
    if (this.positionOverride !== undefined) {
      this.violations.push({ rule, message, ...this.positionOverride });
      return;
    }
    const loc = (node as Located).loc;
    const violation: Violation = { rule, message, line: loc?.start.line ?? 0, column: loc?.start.column ?? 0, offset: startOf(node) };
    if (identifiers !== undefined) {
      violation.identifiers = identifiers.map((identifier) => {
        const start = (identifier as Located).loc?.start;
        return { name: identifier.name, line: start?.line ?? 0, column: start?.column ?? 0 };
      });
    }
    this.violations.push(violation);
  }

  referenceOf(identifier: Identifier): Reference | undefined {
    return this.referenceByIdentifier.get(identifier);
  }

  /** The variable an identifier reference resolves to, or null for a global (or not a reference). */
  variableOf(identifier: Identifier): Variable | null {
    return this.referenceByIdentifier.get(identifier)?.resolved ?? null;
  }

  /** True when `node` is a reference to the global `name` (not shadowed by any local binding). */
  isGlobal(node: Node | null | undefined, name?: string): node is Identifier {
    if (node === null || node === undefined || node.type !== 'Identifier') return false;
    if (name !== undefined && node.name !== name) return false;
    const reference = this.referenceByIdentifier.get(node);
    return reference !== undefined && reference.resolved === null;
  }

  /**
   * The scope whose code runs together with `scope`'s code: the nearest enclosing function (or
   * class field initializer). Two references with the same owner run in one activation.
   */
  ownerOf(scope: Scope): Scope {
    const cached = this.ownerCache.get(scope);
    if (cached !== undefined) return cached;
    let current: Scope = scope;
    while (!deferredScopeTypes.has(current.type) && current.upper !== null) current = current.upper;
    this.ownerCache.set(scope, current);
    return current;
  }
}
