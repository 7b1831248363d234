/* SMS segment arithmetic for the reply composer: the same rules as messages/segments.py (GSM 03.38 basic and
 * extension tables; one non-GSM character makes the whole text UCS-2; split parts hold 153 / 67 units and never
 * cut an escape pair or a surrogate pair in half). tests/messages/inbox/test_segments_js.py checks the two agree.
 */
(function (global) {
  "use strict";

  var GSM7_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM7_EXTENSION = "^{}\\[~]|€\f";

  function isGsm7(chars) {
    for (var i = 0; i < chars.length; i++) {
      if (GSM7_BASIC.indexOf(chars[i]) < 0 && GSM7_EXTENSION.indexOf(chars[i]) < 0) {
        return false;
      }
    }
    return true;
  }

  function segmentInfo(body) {
    var chars = Array.from(body); // code points, like Python's str
    var gsm = isGsm7(chars);
    var single = gsm ? 160 : 70;
    var multi = gsm ? 153 : 67;
    var costs = chars.map(function (ch) {
      if (gsm) {
        return GSM7_EXTENSION.indexOf(ch) >= 0 ? 2 : 1;
      }
      return ch.codePointAt(0) > 0xffff ? 2 : 1;
    });
    var units = costs.reduce(function (a, b) { return a + b; }, 0);
    var encoding = gsm ? "GSM-7" : "UCS-2";
    if (units === 0) {
      return { encoding: encoding, characters: 0, segments: 0, perSegment: single, remaining: single };
    }
    if (units <= single) {
      return { encoding: encoding, characters: units, segments: 1, perSegment: single, remaining: single - units };
    }
    var segments = 1;
    var used = 0;
    costs.forEach(function (cost) {
      if (used + cost > multi) {
        segments += 1;
        used = 0;
      }
      used += cost;
    });
    return { encoding: encoding, characters: units, segments: segments, perSegment: multi, remaining: multi - used };
  }

  global.civicdeskSegments = { segmentInfo: segmentInfo };
})(window);
