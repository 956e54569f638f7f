/**
 * The shape of `GET /v1/dashboard/series`, shared by the route that makes it and the page that draws it (no imports:
 * the browser bundle takes it as it is).
 */
/** Columns of numbers (null where a value is missing): what a chart needs, a fifth of the records' JSON. */
export interface DashboardSeries {
  pair: string;
  from: number;
  to: number;
  candles: { t: number[]; o: number[]; h: number[]; l: number[]; c: number[] };
  predictions: {
    t: number[];
    w: number[];
    v: number[];
    p: number[];
    lo: number[];
    hi: number[];
    lat: number[];
  };
  errors: {
    t: number[];
    w: number[];
    v: number[];
    e: (number | null)[];
    pe: (number | null)[];
    hit: (number | null)[];
  };
}
