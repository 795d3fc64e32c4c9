// The matrix installs older majors under aliases (`express4: npm:express@^4`,
// `koa2: npm:koa@^2`, `fastify4: npm:fastify@^4`); type them with the current majors' declarations.
declare module 'express4' {
  import express from 'express';
  export default express;
}
declare module 'koa2' {
  import Koa from 'koa';
  export default Koa;
}
declare module 'fastify4' {
  import fastify from 'fastify';
  export default fastify;
}
