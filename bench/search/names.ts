/**
 * Brazilian given and family names for the search data set: many more than the read benchmark's, with
 * accents, cedillas and common prefixes (Sa-, Ma-, Go-), so `Patient?name=<prefix>` meets realistic
 * selectivity and the accent-insensitive path is exercised (`gonc` finds Gonçalves, `avi` finds Ávila).
 */
import type { NameLists } from '../patients';

const FAMILY = [
  'Silva', 'Santos', 'Oliveira', 'Souza', 'Rodrigues', 'Ferreira', 'Alves', 'Pereira', 'Lima', 'Gomes',
  'Costa', 'Ribeiro', 'Martins', 'Carvalho', 'Almeida', 'Lopes', 'Soares', 'Fernandes', 'Vieira', 'Barbosa',
  'Rocha', 'Dias', 'Nascimento', 'Andrade', 'Moreira', 'Nunes', 'Marques', 'Machado', 'Mendes', 'Freitas',
  'Cardoso', 'Ramos', 'Gonçalves', 'Santana', 'Teixeira', 'Araújo', 'Moura', 'Correia', 'Pinto', 'Cavalcanti',
  'Monteiro', 'Campos', 'Batista', 'Castro', 'Reis', 'Brito', 'Moraes', 'Azevedo', 'Cunha', 'Borges',
  'Medeiros', 'Xavier', 'Farias', 'Pires', 'Tavares', 'Macedo', 'Rezende', 'Sampaio', 'Brandão', 'Magalhães',
  'Conceição', 'Simões', 'Falcão', 'Guimarães', 'Peixoto', 'Leão', 'Aragão', 'Assunção', 'Antunes', 'Bezerra',
  'Queiroz', 'Siqueira', 'Fonseca', 'Coelho', 'Miranda', 'Duarte', 'Vasconcelos', 'Damasceno', 'Figueiredo', 'Bittencourt',
  'Prado', 'Paiva', 'Lacerda', 'Nogueira', 'Amaral', 'Sales', 'Barros', 'Cruz', 'Matos', 'Sá',
  'Mota', 'Chaves', 'Vargas', 'Toledo', 'Leite', 'Lobo', 'Jesus', 'Abreu', 'Caldeira', 'Valente',
  'Ávila', 'Álvares', 'Espíndola', 'Würzius', 'Müller', 'Yamamoto', 'Tanaka', 'Nakamura', 'Haddad', 'Salomão',
  'Zanetti', 'Bortolotto', 'Ferraz', 'Quintela', 'Ubaldo', 'Galvão', 'Estêvão', 'Ilha', 'Otero', 'Kowalski',
];

const GIVEN_F = [
  'Ana', 'Maria', 'Juliana', 'Fernanda', 'Beatriz', 'Camila', 'Larissa', 'Patrícia', 'Luíza', 'Helena',
  'Alice', 'Laura', 'Valentina', 'Sofia', 'Manuela', 'Cecília', 'Lívia', 'Isadora', 'Giovanna', 'Heloísa',
  'Letícia', 'Vitória', 'Yasmin', 'Mariana', 'Gabriela', 'Rafaela', 'Bianca', 'Débora', 'Tânia', 'Conceição',
];
const GIVEN_M = [
  'João', 'Pedro', 'Lucas', 'Gabriel', 'Rafael', 'Carlos', 'Mateus', 'Thiago', 'André', 'José',
  'Miguel', 'Arthur', 'Heitor', 'Bernardo', 'Davi', 'Théo', 'Lorenzo', 'Gustavo', 'Enzo', 'Benício',
  'Otávio', 'Caio', 'Vinícius', 'Rodrigo', 'Marcelo', 'Sérgio', 'Antônio', 'Luís', 'Fábio', 'Érico',
];

/** Family names are drawn with a skew (rand^2): Silva is common, Kowalski rare, as in a real population. */
export const SEARCH_NAMES: NameLists = { family: FAMILY, givenF: GIVEN_F, givenM: GIVEN_M, skew: 2 };

/** Lower-case, accent-free: how the string index stores values and how a hand-written endpoint would match. */
export function normalizeString(value: string): string {
  return value.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/**
 * A prefix a user would type into a patient search box: 3 to 6 letters of a family name, as typed
 * (lower case, upper case, without accents, or exactly).
 */
export function namePrefix(rand: () => number): string {
  const family = FAMILY[Math.floor(rand() * FAMILY.length)];
  const prefix = family.slice(0, Math.min(family.length, 3 + Math.floor(rand() * 4)));
  const style = rand();
  if (style < 0.4) return prefix.toLowerCase();
  if (style < 0.6) return prefix.toUpperCase();
  if (style < 0.8) return prefix.normalize('NFD').replace(/\p{M}/gu, '');
  return prefix;
}
