// The browser's password strength check, before any Argon2id work: at least
// 10 characters and not one of the passwords every guessing list starts
// with. The server sees only the login secret, so it cannot check this.

export const MIN_LENGTH = 10;

// The most common passwords of 10+ characters (leaked-password lists), lower case.
const COMMON = new Set([
  '1234567890', '0123456789', '1q2w3e4r5t', 'qwertyuiop', 'password12', 'password123',
  'password1234', 'passw0rd123', 'iloveyou12', 'qwerty1234', 'qwerty12345', '1qaz2wsx3edc',
  'abcdefghij', 'abc1234567', 'a1234567890', '11111111111', '0000000000', '1111111111',
  'letmein123', 'welcome123', 'welcome1234', 'football123', 'baseball123', 'sunshine123',
  'princess123', 'dragon1234', 'monkey1234', 'trustno1234', 'changeme123', 'administrator',
  'qazwsxedcrfv', 'asdfghjkl1', 'zxcvbnm123', '9876543210', 'passwordpassword', 'portal1234',
  'secret1234', 'master1234', 'superman123', 'computer123',
]);

/** null when `password` is acceptable, else the error key 'weak_password'. */
export function passwordProblem(password) {
  if (typeof password !== 'string' || [...password].length < MIN_LENGTH) return 'weak_password';
  const folded = password.toLowerCase();
  if (COMMON.has(folded)) return 'weak_password';
  // one character repeated ("aaaaaaaaaa") is no password either
  if (new Set(folded).size < 3) return 'weak_password';
  return null;
}
