// The SVG writer: data coordinates map linearly onto the plot rectangle; everything is written as
// plain SVG 1.1 elements with presentation attributes (no CSS, no scripts) so any viewer draws it.
#include "eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"

namespace cascade::svg {

namespace {

constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kLegendWidth = 230, kLeft = 72, kTop = 40, kBottom = 56, kGap = 18;

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string num(double v) {  // coordinates: two decimals are sub-pixel
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// A tick label with as many decimals as the step needs (so 0.25 steps print 0.25, not 0.2).
std::string tick_label(double v, double step) {
  char b[32];
  if (std::fabs(v) >= 1e5 || (step < 1e-4 && v != 0)) std::snprintf(b, sizeof b, "%.3g", v);
  else {
    const int decimals = std::max(0, int(std::ceil(-std::log10(step) - 1e-9)));
    std::snprintf(b, sizeof b, "%.*f", decimals, std::fabs(v) < step * 1e-6 ? 0.0 : v);
  }
  return b;
}

// Marker k of a series: circle, square, triangle, diamond in turn, so that coinciding points of
// different series stay distinguishable.
std::string marker(size_t k, double cx, double cy, const std::string& color) {
  const double r = 3.6;
  switch (k % 4) {
    case 0:
      return "<circle cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(r) + "\" fill=\"" + color + "\"/>\n";
    case 1:
      return "<rect x=\"" + num(cx - r) + "\" y=\"" + num(cy - r) + "\" width=\"" + num(2 * r) + "\" height=\"" +
             num(2 * r) + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.4\"/>\n";
    case 2:
      return "<path d=\"M" + num(cx) + " " + num(cy - 1.2 * r) + " L" + num(cx + 1.1 * r) + " " + num(cy + 0.8 * r) +
             " L" + num(cx - 1.1 * r) + " " + num(cy + 0.8 * r) + " Z\" fill=\"" + color + "\"/>\n";
    default:
      return "<path d=\"M" + num(cx) + " " + num(cy - 1.3 * r) + " L" + num(cx + 1.3 * r) + " " + num(cy) + " L" +
             num(cx) + " " + num(cy + 1.3 * r) + " L" + num(cx - 1.3 * r) + " " + num(cy) +
             " Z\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.4\"/>\n";
  }
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  // An empty or zero-width range still needs a visible axis.
  void widen() {
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) {
      const double pad = std::max(0.5 * std::fabs(lo), 0.5);
      lo -= pad, hi += pad;
    }
  }
};

// The plotted y of a value (log10 on a log axis; NaN where it cannot be drawn).
double plot_y(const Plot& p, double v) {
  if (!p.log_y) return v;
  return v > 0 ? std::log10(v) : std::numeric_limits<double>::quiet_NaN();
}

// An error bar's ends in plot coordinates: y -+ err, the lower end clamped to y where it cannot be drawn.
std::pair<double, double> bar_ends(const Plot& p, double y, double err) {
  const double lo = plot_y(p, y - err), hi = plot_y(p, y + err);
  return {std::isfinite(lo) ? lo : plot_y(p, y), hi};
}

// Log-axis ticks (in log10 units) inside [lo, hi]: 1, 2, 5 x 10^k, or the decades alone when those
// would be too many.
std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> all, decades;
  for (double k = std::floor(lo); k <= std::ceil(hi); ++k)
    for (double m : {1.0, 2.0, 5.0}) {
      const double t = k + std::log10(m);
      if (t < lo - 1e-12 || t > hi + 1e-12) continue;
      all.push_back(t);
      if (m == 1.0) decades.push_back(t);
    }
  return all.size() > 9 && decades.size() >= 2 ? decades : all;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  // A small tolerance keeps an endpoint that floating-point division puts a hair outside.
  const double first = std::floor(lo / step + 1e-9) * step, last = std::ceil(hi / step - 1e-9) * step;
  for (int64_t i = 0; first + double(i) * step <= last + step * 1e-6; ++i) t.push_back(first + double(i) * step);
  return t;
}

std::string render(const Plot& p, int width, int height) {
  Range xr, yr;
  for (const Series& s : p.series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(plot_y(p, s.y[i]))) continue;
      xr.add(s.x[i]);
      const double e = s.err.empty() || !std::isfinite(s.err[i]) ? 0.0 : s.err[i];
      const auto [lo, hi] = bar_ends(p, s.y[i], e);
      yr.add(lo);
      yr.add(hi);
    }
  xr.widen();
  yr.widen();
  // The axes span the data plus a margin, so that no marker sits on the frame; ticks are the nice
  // values inside.
  const double xpad = std::max(0.05 * (xr.hi - xr.lo), p.integer_x ? 0.3 : 0.0), ypad = 0.06 * (yr.hi - yr.lo);
  const double x0 = xr.lo - xpad, x1 = xr.hi + xpad;
  const double y0 = yr.lo - ypad, y1 = yr.hi + ypad;
  auto inside = [](std::vector<double> t, double lo, double hi) {
    std::erase_if(t, [&](double v) { return v < lo - 1e-12 || v > hi + 1e-12; });
    return t;
  };
  std::vector<double> xt = inside(nice_ticks(x0, x1, p.integer_x ? std::min(10, int(x1 - x0) + 1) : 6), x0, x1);
  if (p.integer_x) std::erase_if(xt, [](double v) { return std::fabs(v - std::round(v)) > 1e-9; });
  const std::vector<double> yt = p.log_y ? log_ticks(y0, y1) : inside(nice_ticks(y0, y1, 6), y0, y1);
  const double xstep = p.integer_x ? 1.0 : (xt.size() > 1 ? xt[1] - xt[0] : 1.0);
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1.0;
  const double px0 = kLeft, px1 = width - kLegendWidth - kGap, py0 = height - kBottom, py1 = kTop;
  auto X = [&](double v) { return px0 + (v - x0) / (x1 - x0) * (px1 - px0); };
  auto Y = [&](double v) { return py0 + (v - y0) / (y1 - y0) * (py1 - py0); };

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  // The title is centred on the whole figure: it may be wider than the plot area.
  o << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << esc(p.title)
    << "</text>\n";
  // Grid and ticks.
  for (double v : yt) {
    o << "<line x1=\"" << num(px0) << "\" x2=\"" << num(px1) << "\" y1=\"" << num(Y(v)) << "\" y2=\"" << num(Y(v))
      << "\" stroke=\"#e4e4e4\"/>\n";
    char lg[32];
    if (p.log_y) std::snprintf(lg, sizeof lg, "%g", std::pow(10.0, v));
    o << "<text x=\"" << num(px0 - 6) << "\" y=\"" << num(Y(v) + 4) << "\" text-anchor=\"end\">"
      << (p.log_y ? std::string(lg) : tick_label(v, ystep)) << "</text>\n";
  }
  for (double v : xt) {
    o << "<line x1=\"" << num(X(v)) << "\" x2=\"" << num(X(v)) << "\" y1=\"" << num(py0) << "\" y2=\"" << num(py1)
      << "\" stroke=\"#f0f0f0\"/>\n";
    o << "<text x=\"" << num(X(v)) << "\" y=\"" << num(py0 + 17) << "\" text-anchor=\"middle\">"
      << tick_label(v, xstep) << "</text>\n";
  }
  o << "<rect x=\"" << num(px0) << "\" y=\"" << num(py1) << "\" width=\"" << num(px1 - px0) << "\" height=\""
    << num(py0 - py1) << "\" fill=\"none\" stroke=\"#333\"/>\n";
  o << "<text x=\"" << num((px0 + px1) / 2) << "\" y=\"" << height - 14 << "\" text-anchor=\"middle\">" << esc(p.xlabel)
    << "</text>\n";
  o << "<text transform=\"translate(18," << num((py0 + py1) / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
    << esc(p.ylabel) << "</text>\n";

  // Series: line (broken at NaN), error bars, markers, labels; then the legend entry.
  for (size_t k = 0; k < p.series.size(); ++k) {
    const Series& s = p.series[k];
    const size_t style = s.style >= 0 ? size_t(s.style) : k;
    const std::string c = kColors[style % std::size(kColors)];
    std::string d;
    bool pen = false;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(plot_y(p, s.y[i]))) {
        pen = false;
        continue;
      }
      d += (pen ? " L" : " M") + num(X(s.x[i])) + " " + num(Y(plot_y(p, s.y[i])));
      pen = true;
    }
    if (!d.empty()) o << "<path d=\"" << d << "\" fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.8\"/>\n";
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(plot_y(p, s.y[i]))) continue;
      const double cx = X(s.x[i]), cy = Y(plot_y(p, s.y[i]));
      if (!s.err.empty() && std::isfinite(s.err[i]) && s.err[i] > 0) {
        const auto [lo, hi] = bar_ends(p, s.y[i], s.err[i]);
        const double a = Y(lo), b = Y(hi);
        o << "<path d=\"M" << num(cx) << " " << num(a) << " L" << num(cx) << " " << num(b) << " M" << num(cx - 3) << " "
          << num(a) << " L" << num(cx + 3) << " " << num(a) << " M" << num(cx - 3) << " " << num(b) << " L"
          << num(cx + 3) << " " << num(b) << "\" stroke=\"" << c << "\" stroke-width=\"1\" fill=\"none\"/>\n";
      }
      o << marker(style, cx, cy, c);
      if (i < s.labels.size() && !s.labels[i].empty())
        // Alternately above and below the marker, so that labels of close points do not overprint.
        o << "<text x=\"" << num(cx + 5) << "\" y=\"" << num(i % 2 ? cy + 14 : cy - 6) << "\" font-size=\"10\" fill=\"" << c << "\">"
          << esc(s.labels[i]) << "</text>\n";
    }
    const double ly = kTop + 8 + 20.0 * double(k), lx = width - kLegendWidth;
    o << "<line x1=\"" << num(lx) << "\" x2=\"" << num(lx + 22) << "\" y1=\"" << num(ly) << "\" y2=\"" << num(ly)
      << "\" stroke=\"" << c << "\" stroke-width=\"1.8\"/>\n";
    o << marker(style, lx + 11, ly, c);
    o << "<text x=\"" << num(lx + 28) << "\" y=\"" << num(ly + 4) << "\">" << esc(s.name) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

void write(const Plot& p, const std::filesystem::path& file) {
  std::ofstream f(file, std::ios::binary);
  if (!f) fail(file.string(), ": cannot open for writing");
  f << render(p);
  if (!f) fail(file.string(), ": write failed");
}

}  // namespace cascade::svg
