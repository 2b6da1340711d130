// See ajv-validate.sh. strict mode: a schema keyword ajv does not know, or a
// format it cannot check, is an error rather than silently ignored.
"use strict";
const fs = require("fs");
const Ajv2020 = require("ajv/dist/2020");
const addFormats = require("ajv-formats");

const [schemaPath, docsPath] = process.argv.slice(2);
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, strictTypes: false });
addFormats(ajv);
const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaPath, "utf8")));
const docs = JSON.parse(fs.readFileSync(docsPath, "utf8"));
const out = docs.map((doc) => {
  const valid = validate(doc);
  return {
    valid,
    errors: valid ? [] : validate.errors.map((e) => `${e.instancePath || "/"}: ${e.message}`),
  };
});
process.stdout.write(JSON.stringify(out));
