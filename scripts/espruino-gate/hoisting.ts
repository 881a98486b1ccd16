// Scope rules: Espruino does not hoist, and a `for (let ...)` binding is one binding for all
// iterations. Both are found with eslint-scope's references, not by looking at names.
import type { Reference, Scope, Variable } from 'eslint-scope';
import type { CallExpression, Function as FunctionNode, Identifier, NewExpression, Node, VariableDeclaration } from 'estree';
import { startOf, type GateContext } from './context.ts';

/** Where a `var` or function declaration takes effect on Espruino, or null for other bindings. */
function declarationOffset(variable: Variable): number | null {
  let offset: number | null = null;
  for (const definition of variable.defs) {
    let start: number | null = null;
    if (definition.type === 'FunctionName') start = startOf(definition.node);
    else if (definition.type === 'Variable' && (definition.parent as VariableDeclaration).kind === 'var') start = startOf(definition.node);
    // let/const/class have a temporal dead zone in every engine: using them early fails in Node
    // too, so it is not an Espruino difference (probe `let-tdz` is OK).
    if (start !== null && (offset === null || start < offset)) offset = start;
  }
  return offset;
}

/** The function(s) that run when `variable` is called or constructed, if it is a local function or class. */
function bodiesOf(variable: Variable): Node[] {
  for (const definition of variable.defs) {
    if (definition.type === 'FunctionName') return [definition.node];
    let value: Node | null | undefined = null;
    if (definition.type === 'ClassName') value = definition.node;
    else if (definition.type === 'Variable') value = definition.node.init;
    if (value === null || value === undefined) continue;
    if (value.type === 'FunctionExpression' || value.type === 'ArrowFunctionExpression') return [value];
    if (value.type === 'ClassDeclaration' || value.type === 'ClassExpression') {
      const bodies: Node[] = [];
      for (const member of value.body.body) {
        if (member.type === 'MethodDefinition' && member.kind === 'constructor') bodies.push(member.value);
        if (member.type === 'PropertyDefinition' && !member.static && member.value) bodies.push(member.value);
      }
      return bodies;
    }
  }
  return [];
}

/**
 * Refuses (1) a `var` or function used before its declaration in code that runs at once, and
 * (2) a call, made before some declaration, to a local function that uses that declaration.
 */
export function checkHoisting(context: GateContext, callSites: (CallExpression | NewExpression)[]): void {
  const { scopeManager } = context;
  const immediateReferences = new Map<Scope, Reference[]>();
  for (const scope of scopeManager.scopes) {
    const owner = context.ownerOf(scope);
    const list = immediateReferences.get(owner) ?? [];
    list.push(...scope.references);
    immediateReferences.set(owner, list);
  }

  for (const scope of scopeManager.scopes) {
    for (const reference of scope.references) {
      const variable = reference.resolved;
      if (variable === null) continue;
      const declared = declarationOffset(variable);
      if (declared === null) continue;
      if (startOf(reference.identifier as Identifier) >= declared) continue;
      if (context.ownerOf(reference.from) !== context.ownerOf(variable.scope)) continue;
      const kind = variable.defs[0]?.type === 'FunctionName' ? 'function' : 'var';
      context.report(
        reference.identifier as Identifier,
        'use-before-declaration',
        `${kind} '${variable.name}' used before its declaration (Espruino does not hoist)`,
        [reference.identifier as Identifier],
      );
    }
  }

  for (const call of callSites) {
    if (call.callee.type !== 'Identifier') continue;
    const calleeReference = context.referenceOf(call.callee);
    const callee = calleeReference?.resolved;
    if (calleeReference === undefined || callee === null || callee === undefined) continue;
    const site = context.ownerOf(calleeReference.from);
    if (context.ownerOf(callee.scope) !== site) continue;
    const callOffset = startOf(call);
    const visited = new Set<Variable>([callee]);
    const pending: Variable[] = [callee];
    let reported = false;
    while (pending.length > 0 && !reported) {
      const current = pending.pop() as Variable;
      for (const body of bodiesOf(current)) {
        const bodyScope = scopeManager.acquire(body as FunctionNode) ?? null;
        const references = bodyScope === null ? [] : (immediateReferences.get(context.ownerOf(bodyScope)) ?? []);
        for (const reference of references) {
          const used = reference.resolved;
          if (used === null || context.ownerOf(used.scope) !== site) continue;
          const declared = declarationOffset(used);
          if (declared !== null && declared > callOffset) {
            const name = call.callee.name;
            const how = call.type === 'NewExpression' ? `new '${name}'()` : `'${name}'()`;
            context.report(
              call,
              'use-before-declaration',
              `${how} runs before '${used.name}' is declared, and uses it (Espruino does not hoist)`,
              [call.callee, used.identifiers[0] as Identifier],
            );
            reported = true;
            break;
          }
          if (!visited.has(used) && bodiesOf(used).length > 0) {
            visited.add(used);
            pending.push(used);
          }
        }
        if (reported) break;
      }
    }
  }
}

/** Refuses a closure that captures a `for (let/const ...)` binding: Espruino shares one for all iterations. */
export function checkLoopClosure(context: GateContext, declaration: VariableDeclaration): void {
  if (declaration.kind === 'var') return;
  for (const variable of context.scopeManager.getDeclaredVariables(declaration)) {
    for (const reference of variable.references) {
      if (context.ownerOf(reference.from) === context.ownerOf(variable.scope)) continue;
      context.report(
        reference.identifier as Identifier,
        'loop-closure',
        `closure captures the for-loop binding '${variable.name}' (Espruino shares one binding for all iterations)`,
        [reference.identifier as Identifier],
      );
    }
  }
}
