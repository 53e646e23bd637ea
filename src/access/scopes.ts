/**
 * The SMART App Launch scope grammar, v1 and v2, and the intersection the token endpoint grants.
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
 *
 * Resource scopes: `( patient | user | system ) / ( ResourceType | * ) . permissions [ ? param=value & ... ]`.
 * v2 permissions are a non-empty, in-order subset of `cruds` (the spec fixes the order, so `sr` is not a
 * scope). v1 `read` means v2 `rs`, v1 `write` means `cud`, v1 `*` means `cruds`
 * (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-fhir-resources).
 * A v2 query narrows the scope to resources matching those search parameters ("granular scopes",
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#finer-grained-resource-constraints-using-search-parameters).
 */

export type Permission = 'c' | 'r' | 'u' | 'd' | 's';
export type ScopeContext = 'patient' | 'user' | 'system';

const ORDER: readonly Permission[] = ['c', 'r', 'u', 'd', 's'];
const V1: Record<string, readonly Permission[]> = { read: ['r', 's'], write: ['c', 'u', 'd'], '*': ORDER };

/** One search parameter of a v2 scope's query: `category=a,b` is { code: 'category', values: ['a', 'b'] } (any of). */
export interface ScopeConstraint {
  code: string;
  values: string[];
}

export interface ResourceScope {
  kind: 'resource';
  /** The scope as written. */
  raw: string;
  context: ScopeContext;
  /** A resource type name, or '*'. */
  resourceType: string;
  permissions: ReadonlySet<Permission>;
  /** Every constraint must hold (repeated parameters AND, comma-separated values OR, as in FHIR search). */
  constraints: ScopeConstraint[];
  version: 1 | 2;
}

/**
 * Scopes that grant no resource access: launch context (`launch`, `launch/patient`, `launch/encounter`),
 * identity (`openid`, `fhirUser`, `profile`) and refresh tokens (`offline_access`, `online_access`).
 */
export interface OtherScope {
  kind: 'context' | 'identity' | 'refresh';
  raw: string;
}

export type ParsedScope = ResourceScope | OtherScope;

const OTHER: Record<string, OtherScope['kind']> = {
  launch: 'context',
  'launch/patient': 'context',
  'launch/encounter': 'context',
  openid: 'identity',
  fhirUser: 'identity',
  profile: 'identity',
  offline_access: 'refresh',
  online_access: 'refresh',
};

const RESOURCE_SCOPE = /^(patient|user|system)\/([A-Z][A-Za-z]{1,63}|\*)\.([a-z*]+)(?:\?(.+))?$/;
const PARAM_CODE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Parses one scope; undefined when it is not a SMART scope this server understands. */
export function parseScope(s: string): ParsedScope | undefined {
  const other = OTHER[s];
  if (other) return { kind: other, raw: s };
  const m = RESOURCE_SCOPE.exec(s);
  if (!m) return undefined;
  const [, context, resourceType, perms, query] = m;
  let permissions: readonly Permission[] | undefined;
  let version: 1 | 2;
  if (V1[perms] && query === undefined) {
    permissions = V1[perms];
    version = 1;
  } else {
    permissions = v2Permissions(perms);
    version = 2;
  }
  if (!permissions) return undefined;
  const constraints = query === undefined ? [] : parseConstraints(query);
  if (!constraints) return undefined;
  return { kind: 'resource', raw: s, context: context as ScopeContext, resourceType, permissions: new Set(permissions), constraints, version };
}

/** `cruds` letters, non-empty, each at most once, in that order. */
function v2Permissions(perms: string): Permission[] | undefined {
  const out: Permission[] = [];
  let at = 0;
  for (const ch of perms) {
    const i = ORDER.indexOf(ch as Permission, at);
    if (i < 0) return undefined;
    out.push(ORDER[i]);
    at = i + 1;
  }
  return out.length > 0 ? out : undefined;
}

function parseConstraints(query: string): ScopeConstraint[] | undefined {
  const out: ScopeConstraint[] = [];
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    let code: string;
    let value: string;
    try {
      code = decodeURIComponent(part.slice(0, eq));
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      return undefined;
    }
    // Modifiers (`code:not`) and chains are not part of what the server promises to honour: refuse the scope.
    if (!PARAM_CODE.test(code) || value === '') return undefined;
    out.push({ code, values: value.split(',') });
  }
  return out;
}

/** Percent-encodes what would end a value in a scope's query (`|`, `:` and `/` stay readable). */
const escapeValue = (v: string) => v.replace(/[%&=#+\s]/g, (ch) => encodeURIComponent(ch));

/** Parses a space-separated scope string (or a list); unknown scopes are dropped. */
export function parseScopes(scopes: string | readonly string[]): ParsedScope[] {
  const list = typeof scopes === 'string' ? scopes.split(/\s+/) : scopes;
  return list.filter((s) => s.length > 0).map(parseScope).filter((s): s is ParsedScope => s !== undefined);
}

/** Writes a resource scope back as a string: v1 form when it was v1 and still expressible, else v2. */
export function formatScope(scope: Omit<ResourceScope, 'raw' | 'kind'>): string {
  const letters = ORDER.filter((p) => scope.permissions.has(p)).join('');
  let perms = letters;
  if (scope.version === 1 && scope.constraints.length === 0) {
    const v1 = Object.entries(V1).find(([, ps]) => ps.join('') === letters)?.[0];
    if (v1) perms = v1;
  }
  const query = scope.constraints.map((c) => `${c.code}=${c.values.map(escapeValue).join(',')}`).join('&');
  return `${scope.context}/${scope.resourceType}.${perms}${query ? `?${query}` : ''}`;
}

/**
 * What the token endpoint grants: the requested scopes narrowed to what is allowed (the client's registered
 * scopes, then the user's role ceiling). For each requested resource scope and each allowed one of the same
 * context: the type is the narrower of the two (an allowed `*` covers a requested `Observation`; a requested
 * `*` meets an allowed `Observation` as `Observation`), the permissions are the common letters, and the
 * constraints are both sets together. Other scopes (openid, launch/patient, offline_access, ...) are granted
 * when allowed verbatim. A requested scope that comes out unchanged is returned as written.
 */
export function intersectScopes(requested: string | readonly string[], allowed: string | readonly string[]): string[] {
  const allowedParsed = parseScopes(allowed);
  const allowedOther = new Set(allowedParsed.filter((s) => s.kind !== 'resource').map((s) => s.raw));
  const allowedResource = allowedParsed.filter((s): s is ResourceScope => s.kind === 'resource');
  const granted: string[] = [];
  for (const req of parseScopes(requested)) {
    if (req.kind !== 'resource') {
      if (allowedOther.has(req.raw)) granted.push(req.raw);
      continue;
    }
    for (const allow of allowedResource) {
      const narrowed = intersectOne(req, allow);
      if (narrowed) granted.push(narrowed);
    }
  }
  return [...new Set(granted)];
}

function intersectOne(req: ResourceScope, allow: ResourceScope): string | undefined {
  if (req.context !== allow.context) return undefined;
  if (req.resourceType !== '*' && allow.resourceType !== '*' && req.resourceType !== allow.resourceType) return undefined;
  const resourceType = req.resourceType === '*' ? allow.resourceType : req.resourceType;
  const permissions = new Set([...req.permissions].filter((p) => allow.permissions.has(p)));
  if (permissions.size === 0) return undefined;
  const seen = new Set(req.constraints.map(constraintKey));
  const constraints = [...req.constraints, ...allow.constraints.filter((c) => !seen.has(constraintKey(c)))];
  const unchanged = resourceType === req.resourceType && permissions.size === req.permissions.size && constraints.length === req.constraints.length;
  if (unchanged) return req.raw;
  return formatScope({ context: req.context, resourceType, permissions, constraints, version: req.version });
}

const constraintKey = (c: ScopeConstraint) => `${c.code}=${c.values.join(',')}`;
