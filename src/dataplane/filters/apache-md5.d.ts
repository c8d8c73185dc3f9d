/** apache-md5 ships no types: Apache's `$apr1$` MD5 crypt. Given a stored hash as salt, returns the hash of `password` with it. */
declare module 'apache-md5' {
  export default function apacheMd5(password: string, salt?: string): string;
}
