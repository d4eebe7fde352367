/** Key Vault names as Azure allows them: 3-24 characters, a letter first, a letter or digit last, no "--". */
export const VAULT_NAME = /^[A-Za-z](?!.*--)[-A-Za-z0-9]{1,22}[A-Za-z0-9]$/;

/** The fix every message about a bad vault name ends with. */
export const VAULT_NAME_RULE =
  'use 3-24 letters, digits and dashes, starting with a letter, ending with a letter or digit, without "--" (the name, not the URL)';
