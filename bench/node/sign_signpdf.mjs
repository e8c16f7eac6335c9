// @signpdf/signpdf: a placeholder added to the PDF (@signpdf/placeholder-plain), then the CMS signature
// (@signpdf/signer-p12, node-forge) written into it, with the PAdES subfilter.
import { plainAddPlaceholder } from "@signpdf/placeholder-plain";
import { P12Signer } from "@signpdf/signer-p12";
import { SignPdf } from "@signpdf/signpdf";
import { SUBFILTER_ETSI_CADES_DETACHED } from "@signpdf/utils";
import { inputs, serve } from "./timing.mjs";

const given = await inputs();
const signpdf = new SignPdf();

async function sign() {
  const withPlaceholder = plainAddPlaceholder({
    pdfBuffer: given.pdf,
    reason: "Signed with Portico",
    contactInfo: "",
    name: "Shelby Oneil",
    location: "",
    subFilter: SUBFILTER_ETSI_CADES_DETACHED,
  });
  // A signer per signature: P12Signer reads its bundle through a forge buffer that the first signature
  // consumes (a second sign() fails "Too few bytes to parse DER"); it parses the bundle per sign() anyway.
  const signer = new P12Signer(given.p12, { passphrase: given.password });
  return signpdf.sign(withPlaceholder, signer);
}

await serve({ sign });
