// Documenso's signing engine, @libpdf/core: one PAdES (ETSI.CAdES.detached) signature per call, the key
// loaded once. Two modes: the signature alone ("sign"), and the drawn signature and printed name put on
// the page first ("stamp_and_sign", as Documenso draws its fields before it signs).
import { P12Signer, PDF, StandardFonts } from "@libpdf/core";
import { inputs, serve } from "./timing.mjs";

const given = await inputs();
const signer = await P12Signer.create(new Uint8Array(given.p12), given.password);
const pdfBytes = new Uint8Array(given.pdf);
const pngBytes = new Uint8Array(given.png);

async function sign(stamped) {
  const pdf = await PDF.load(pdfBytes);
  if (stamped) {
    const page = pdf.getPage(0);
    page.drawImage(pdf.embedPng(pngBytes), { x: 190, y: 200, width: 150, height: 40 });
    page.drawText("Shelby Oneil", { x: 190, y: 188, size: 8, font: StandardFonts.Helvetica });
  }
  const { bytes } = await pdf.sign({ signer, fieldName: "Taxpayer", reason: "Signed with Portico" });
  return bytes;
}

await serve({ sign: () => sign(false), stamp_and_sign: () => sign(true) });
