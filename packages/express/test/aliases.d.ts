// Express 4 is installed under an alias (`express4: npm:express@^4`); type it with the
// current major's declarations.
declare module 'express4' {
  import express from 'express';
  export default express;
}
