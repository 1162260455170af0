// stub for a standalone build of SimAI's calbusbw.cc: only the GPU type enum is used
#pragma once
#include <iostream>
#include <sstream>
#include <fstream>
#include <string>
#include <vector>
#include <cstdint>
#include <stdexcept>
enum class GPUType { A100, A800, H100, H800, H20, NONE };
