// Koa 2 is installed under an alias (`koa2: npm:koa@^2`); type it with the current major's
// declarations.
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
