// Safe property mangling for the firmware bundle: which property names may be shortened, and to
// what. Only `private` class members qualify, minus every name the outside world could also use.
import { dirname, resolve } from 'node:path';
import ts from 'typescript';

/** Why a private member keeps its name (the first reason found). */
export type KeepReason = string;

export interface MangleAnalysis {
  /** Original name -> short name, for esbuild's `mangleCache`; sorted by original name. */
  cache: Record<string, string>;
  /** Every private member name found in the project sources. */
  privateNames: string[];
  /** Private names that keep their name, with the reason. */
  kept: Record<string, KeepReason>;
  /** Names that must never be produced or mangled: public members, built-ins, API names. */
  reserved: Set<string>;
}

/** Words a short name must never be: Espruino's parser treats some as keywords even after a dot. */
const keywords = new Set(
  ('break case catch class const continue debugger default delete do else enum export extends false finally for function ' +
    'if import in instanceof let new null return super switch this throw true try typeof var void while with yield ' +
    'await implements interface package private protected public static undefined NaN Infinity arguments eval').split(' '),
);

/**
 * Property names of JavaScript's built-ins as this Node sees them: every global, its own
 * properties and those of its prototype (two levels). A superset of Espruino's: keeping a name
 * too many costs bytes, never correctness.
 */
export function builtinPropertyNames(): Set<string> {
  const names = new Set<string>();
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): void => {
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) return;
    seen.add(value);
    for (const name of Object.getOwnPropertyNames(value)) {
      names.add(name);
      if (depth > 0) {
        let child: unknown;
        try {
          child = (value as Record<string, unknown>)[name];
        } catch {
          continue;
        }
        visit(child, depth - 1);
      }
    }
    visit(Object.getPrototypeOf(value), depth);
  };
  visit(globalThis, 2);
  // Instances carry own properties no prototype lists.
  for (const sample of [[], '', /x/g, new Error('x'), function named() {}, new Uint8Array(1), new DataView(new ArrayBuffer(1)), Promise.resolve()]) visit(sample, 1);
  return names;
}

function isPrivate(node: ts.Node): boolean {
  const modifiers = ts.canHaveModifiers(node) ? ts.getModifiers(node) : undefined;
  return modifiers !== undefined && modifiers.some((modifier) => modifier.kind === ts.SyntaxKind.PrivateKeyword);
}

function memberName(name: ts.PropertyName | ts.BindingName | undefined): string | undefined {
  if (name === undefined) return undefined;
  if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name) || ts.isPrivateIdentifier(name)) return name.text;
  return undefined;
}

const identifierLike = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export interface AnalysisOptions {
  /** The bundle's entry: its file and every import it reaches are the project sources. */
  entry: string;
  /** tsconfig for compiler options (default: tsconfig.firmware.json beside the repository root). */
  tsconfigPath: string;
}

/** True for a file of the project (not a declaration file, not a dependency). */
function isProjectSource(file: ts.SourceFile): boolean {
  return !file.isDeclarationFile && !file.fileName.includes('/node_modules/');
}

/**
 * Finds the private members of the project's classes and decides which may be mangled. A name is
 * kept when it is also: a public member, interface or type member, object literal key or enum
 * member anywhere in the sources; a member declared in any declaration file (lib, @types/espruino,
 * espruino.d.ts); a JavaScript built-in property; a whole string literal (`o['name']`, `'name' in o`);
 * read from an untyped value; or a member of a class instance handed to code outside the project
 * (JSON.stringify, Storage.writeJSON ...), which would see the short names.
 */
export function analyseMangleableNames(options: AnalysisOptions): MangleAnalysis {
  const configFile = ts.readConfigFile(options.tsconfigPath, (path) => ts.sys.readFile(path));
  if (configFile.error !== undefined) throw new Error(ts.flattenDiagnosticMessageText(configFile.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, dirname(options.tsconfigPath));
  const program = ts.createProgram([...parsed.fileNames, resolve(options.entry)], { ...parsed.options, noEmit: true });
  const checker = program.getTypeChecker();

  const privateNames = new Map<string, number>();
  const kept: Record<string, KeepReason> = {};
  const reserved = new Set<string>();
  const keep = (name: string | undefined, reason: string): void => {
    if (name === undefined) return;
    reserved.add(name);
    if (!(name in kept)) kept[name] = reason;
  };
  const where = (node: ts.Node): string => {
    const file = node.getSourceFile();
    const line = file.getLineAndCharacterOfPosition(node.getStart()).line + 1;
    return `${file.fileName.replace(/^.*?\/(firmware|\.tandem|test|scripts)\//, '$1/')}:${line}`;
  };
  const privateDeclaration = (declaration: ts.Declaration): boolean => isPrivate(declaration) && isProjectSource(declaration.getSourceFile());

  // Private members of a class instance that leaves the project keep their names.
  const keepPrivatesOfType = (type: ts.Type, reason: string, depth: number): void => {
    if (depth > 3) return;
    if (type.isUnionOrIntersection()) {
      for (const part of type.types) keepPrivatesOfType(part, reason, depth + 1);
      return;
    }
    for (const property of checker.getPropertiesOfType(type)) {
      const declarations = property.declarations ?? [];
      if (declarations.some(privateDeclaration)) keep(property.name, reason);
    }
  };

  for (const file of program.getSourceFiles()) {
    if (!isProjectSource(file)) {
      // Every member a declaration file names is an API name: never mangle, never produce it.
      const visitDeclarations = (node: ts.Node): void => {
        if (
          ts.isPropertySignature(node) || ts.isMethodSignature(node) || ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) ||
          ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node) || ts.isEnumMember(node)
        ) {
          keep(memberName(node.name), `declared in ${file.fileName.replace(/^.*\/node_modules\//, '')}`);
        } else if ((ts.isFunctionDeclaration(node) || ts.isClassDeclaration(node) || ts.isInterfaceDeclaration(node) || ts.isModuleDeclaration(node)) && node.name !== undefined) {
          // Globals and namespace members are properties too (globalThis.x, E.x).
          keep(memberName(node.name as ts.PropertyName), `declared in ${file.fileName.replace(/^.*\/node_modules\//, '')}`);
        } else if (ts.isVariableDeclaration(node)) {
          keep(memberName(node.name), `declared in ${file.fileName.replace(/^.*\/node_modules\//, '')}`);
        }
        ts.forEachChild(node, visitDeclarations);
      };
      visitDeclarations(file);
      continue;
    }
    const visit = (node: ts.Node): void => {
      if (
        (ts.isPropertyDeclaration(node) || ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) &&
        ts.isClassLike(node.parent)
      ) {
        const name = memberName(node.name);
        if (name !== undefined) {
          if (isPrivate(node) && ts.isIdentifier(node.name)) privateNames.set(name, privateNames.get(name) ?? 0);
          else keep(name, `public member at ${where(node)}`);
        }
      } else if (ts.isParameter(node) && ts.isConstructorDeclaration(node.parent) && ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).length > 0) {
        // A parameter property (`constructor(private readonly x: T)`).
        const name = memberName(node.name);
        if (name !== undefined) {
          if (isPrivate(node)) privateNames.set(name, privateNames.get(name) ?? 0);
          else keep(name, `public parameter property at ${where(node)}`);
        }
      } else if (ts.isPropertySignature(node) || ts.isMethodSignature(node) || ts.isEnumMember(node)) {
        keep(memberName(node.name), `type member at ${where(node)}`);
      } else if (ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node)) {
        keep(memberName(node.name), `object literal key at ${where(node)}`);
      } else if ((ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) && ts.isObjectLiteralExpression(node.parent)) {
        keep(memberName(node.name), `object literal method at ${where(node)}`);
      } else if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
        if (identifierLike.test(node.text)) keep(node.text, `string literal at ${where(node)}`);
      } else if (ts.isPropertyAccessExpression(node)) {
        const name = node.name.text;
        const symbol = checker.getSymbolAtLocation(node.name);
        const declarations = symbol?.declarations ?? [];
        if (declarations.length === 0) keep(name, `read from an untyped value at ${where(node)}`);
        else if (declarations.some((declaration) => !isProjectSource(declaration.getSourceFile()))) keep(name, `API member at ${where(node)}`);
      } else if (ts.isElementAccessExpression(node) || ts.isForInStatement(node)) {
        // Dynamic keys see the real names: a class instance indexed or enumerated keeps its privates.
        const target = ts.isElementAccessExpression(node) ? node.expression : node.expression;
        keepPrivatesOfType(checker.getTypeAtLocation(target), `enumerated or indexed at ${where(node)}`, 0);
      } else if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
        const signature = checker.getResolvedSignature(node);
        const declaration = signature?.declaration;
        const external = declaration === undefined || !isProjectSource(declaration.getSourceFile());
        if (external) {
          for (const argument of node.arguments ?? []) {
            const type = checker.getTypeAtLocation(argument);
            // Functions (callbacks) are called, not inspected; everything else may be.
            if (type.getCallSignatures().length > 0) continue;
            keepPrivatesOfType(type, `passed to an API at ${where(argument)}`, 0);
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }

  // How often each private name is used, so the most used get the shortest names.
  for (const file of program.getSourceFiles()) {
    if (!isProjectSource(file)) continue;
    const count = (node: ts.Node): void => {
      if (ts.isPropertyAccessExpression(node) && privateNames.has(node.name.text)) privateNames.set(node.name.text, (privateNames.get(node.name.text) ?? 0) + 1);
      ts.forEachChild(node, count);
    };
    count(file);
  }

  for (const name of builtinPropertyNames()) keep(name, 'JavaScript built-in');
  for (const name of keywords) keep(name, 'keyword');

  const mangled = [...privateNames.keys()].filter((name) => !reserved.has(name));
  mangled.sort((a, b) => (privateNames.get(b) ?? 0) - (privateNames.get(a) ?? 0) || (a < b ? -1 : a > b ? 1 : 0));
  const cache: Record<string, string> = {};
  const used = new Set<string>(reserved);
  for (const name of privateNames.keys()) used.add(name);
  const next = shortNames(used);
  for (const name of mangled) cache[name] = next();
  const sortedCache: Record<string, string> = {};
  for (const name of Object.keys(cache).sort()) sortedCache[name] = cache[name]!;
  const keptPrivate: Record<string, KeepReason> = {};
  for (const name of [...privateNames.keys()].sort()) if (name in kept) keptPrivate[name] = kept[name]!;
  return { cache: sortedCache, privateNames: [...privateNames.keys()].sort(), kept: keptPrivate, reserved };
}

/**
 * Short identifiers in a fixed order (a..z A..Z, then two characters ...), skipping every name in
 * `avoid`: a short name never equals a kept member, a built-in or an original private name, so
 * no object can end up with two meanings for one key.
 */
export function shortNames(avoid: Set<string>): () => string {
  const first = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_$';
  const rest = first + '0123456789';
  let index = 0;
  const nameAt = (n: number): string => {
    if (n < first.length) return first[n]!;
    let value = n - first.length;
    let name = '';
    let length = 2;
    let block = first.length * rest.length;
    while (value >= block) {
      value -= block;
      length++;
      block *= rest.length;
    }
    for (let i = 1; i < length; i++) {
      name = rest[value % rest.length]! + name;
      value = Math.floor(value / rest.length);
    }
    return first[value]! + name;
  };
  return () => {
    for (;;) {
      const name = nameAt(index++);
      if (!avoid.has(name)) {
        avoid.add(name);
        return name;
      }
    }
  };
}
