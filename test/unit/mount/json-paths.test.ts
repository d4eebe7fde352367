import { checkJsonPath, extractJsonPath, MAX_JSON_PATH_LENGTH } from '../../../src/mount/json-paths';

describe('checkJsonPath', () => {
  it.each(['username', 'credentials.password', 'hosts[0]', '"dashed-key"', "users[?name=='app'].password | [0]", "join(', ', hosts)", 'length(hosts)'])(
    'accepts %s (JMESPath of the specification)',
    (path) => expect(checkJsonPath(path)).toBeUndefined(),
  );

  it.each([
    ['a.[', /is not a JMESPath expression/],
    ['pad_left(a, `1000000000`)', /"pad_left", which is not a function of JMESPath's specification/],
    ['let $x = a in $x', /uses let expressions/],
    ['a + b', /uses arithmetic/],
    ['[@,@,@,@,@][][@,@,@,@,@][][@,@,@,@,@][]', /selects too many values at once/],
    ['a'.repeat(MAX_JSON_PATH_LENGTH + 1), /is longer than 512 characters/],
  ])('refuses %s', (path, problem) => expect(checkJsonPath(path)).toMatch(problem));
});

describe('extractJsonPath', () => {
  const doc = { s: 'text', n: 5432, b: false, o: { k: 1 }, l: [1], z: null };
  it('writes a string as is and a number or boolean as JSON text', () => {
    expect(extractJsonPath(doc, 's')).toEqual({ text: 'text' });
    expect(extractJsonPath(doc, 'n')).toEqual({ text: '5432' });
    expect(extractJsonPath(doc, 'b')).toEqual({ text: 'false' });
  });

  it('names what is wrong without quoting the value', () => {
    expect(extractJsonPath(doc, 'missing')).toEqual({ problem: 'matches nothing in the secret' });
    expect(extractJsonPath(doc, 'z')).toEqual({ problem: 'matches nothing in the secret' });
    expect(extractJsonPath(doc, 'o')).toEqual({ problem: 'selects an object, not a single value: select one field of it' });
    expect(extractJsonPath(doc, 'l')).toEqual({ problem: 'selects a list, not a single value: select one field of it' });
    const failed = extractJsonPath({ secret: 'canary-value' }, 'abs(secret)');
    expect(failed).toEqual({ problem: 'could not be evaluated on the secret (a function got a value of the wrong type)' });
  });
});
