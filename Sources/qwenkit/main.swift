import QwenKit
print("qwenkit")
