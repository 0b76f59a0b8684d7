// Validate a .glb with the Khronos glTF validator; prints the report summary as JSON.
// Usage: node validate_gltf.js VALIDATOR_DIR FILE.glb
const validator = require(process.argv[2]);
const fs = require("fs");
const asset = new Uint8Array(fs.readFileSync(process.argv[3]));
validator.validateBytes(asset).then((report) => {
  const issues = report.issues;
  const messages = issues.messages.map((m) => `${m.severity} ${m.code} ${m.pointer || ""} ${m.message}`);
  console.log(JSON.stringify({ errors: issues.numErrors, warnings: issues.numWarnings, messages }));
});
