// Standalone driver for SimAI's analytical bus-bandwidth calculator (aliyun/SimAI
// astra-sim-alibabacloud/astra-sim/system/calbusbw.cc, unmodified) and its efficiency ratio
// tables (inputs/ratio/*.csv), following Layer::compute_time: busbw = cal_busbw(...) * cal_ratio(...).
// usage: driver GPU nvlink_GBps nic_GBps nics_per_node node_count coll gpus_per_node size_B group tp_size nranks
#include "calbusbw.h"
#include <cstring>
int main(int argc, char** argv) {
  if (argc != 12) { fprintf(stderr, "bad args\n"); return 2; }
  std::string g = argv[1];
  GPUType t = g == "A100" ? GPUType::A100 : g == "H100" ? GPUType::H100 : g == "H800" ? GPUType::H800 : g == "H20" ? GPUType::H20 : GPUType::NONE;
  BusBwResult r = cal_busbw(t, atof(argv[2]), atof(argv[3]), atof(argv[4]), atoi(argv[5]), argv[6], atoi(argv[7]), (char*)"CX7");
  auto nic = readCSV("nic_ratio.csv"), nvl = readCSV("nvlink_ratio.csv"), ata = readCSV("ata_ratio.csv");
  float ratio = cal_ratio(nic, nvl, ata, strtoull(argv[8], 0, 10), atoi(argv[11]), atoi(argv[10]), 8, argv[9], argv[6], r.is_nvlink);
  printf("RESULT busbw_GBps=%.4f ratio=%.4f theoretical_GBps=%.4f\n", r.busbw * ratio, ratio, r.busbw);
  return 0;
}
