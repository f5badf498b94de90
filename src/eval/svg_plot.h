// A small, self-contained SVG line-plot writer for the study's figures: axes with "nice" ticks
// (steps of 1, 2 or 5 times a power of ten), axis labels, a title, several series with markers
// (shapes cycle with the colours' index so coinciding points stay visible), optional vertical error bars and point labels, and a legend to the right of the plot area.
// No dependency: the study's results must render anywhere an SVG opens (a browser, GitHub).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace cascade::svg {

struct Series {
  std::string name;                 // legend entry
  std::vector<double> x, y;         // same length; a NaN y leaves a gap (no marker, line broken)
  std::vector<double> err;          // empty, or one half-height error bar per point (y +- err)
  std::vector<std::string> labels;  // empty, or one short text per point, drawn beside its marker
  int style = -1;                   // colour and marker index (-1: the series' position), so that one
                                    // quantity keeps its look across figures
};

struct Plot {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  bool integer_x = false;            // x ticks on integers only (layer indices)
  bool log_y = false;                // y on a log10 axis (values <= 0 are not drawn; an error bar
                                     // reaching below 0 is drawn down to its point only)
};

// The SVG document of p (width x height pixels, legend included).
std::string render(const Plot& p, int width = 760, int height = 440);
// render() to a file; cascade::Error if it cannot be written.
void write(const Plot& p, const std::filesystem::path& file);

// Tick positions covering [lo, hi] with about `target` steps of 1, 2 or 5 x 10^k.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace cascade::svg
